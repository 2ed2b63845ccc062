package main

import (
	"io"
	"os"

	"github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/runtime"
)

func (a *app) updateCommand() *cobra.Command {
	var (
		resources                             string
		memory, memorySwap, memoryReservation string
		cpuShares, cpuPeriod                  uint64
		cpuQuota, pidsLimit                   int64
		cpusetCpus, cpusetMems                string
		blkioWeight                           uint16
	)
	cmd := &cobra.Command{
		Use:   "update [flags] <container-id>",
		Short: "Change the resource limits of a running container",
		Example: `  proxcage update --memory 256M --pids-limit 100 demo
  proxcage update --resources limits.json demo   # OCI linux.resources JSON; - reads stdin`,
		Args: exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			res := &specs.LinuxResources{}
			if resources != "" {
				var data []byte
				var err error
				if resources == "-" {
					data, err = io.ReadAll(os.Stdin)
				} else {
					data, err = os.ReadFile(resources)
				}
				if err != nil {
					return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "update %s: --resources", id)
				}
				if res, err = runtime.ParseResources(data); err != nil {
					return errdefs.Context(err, "update", id)
				}
			}
			fl := cmd.Flags()
			mem := func(name, v string, dst **int64) error {
				if !fl.Changed(name) {
					return nil
				}
				n := int64(-1)
				if v != "-1" {
					var err error
					if n, err = units.RAMInBytes(v); err != nil {
						return errdefs.New(errdefs.ErrInvalidArgument, "update %s: --%s %q: %v", id, name, v, err)
					}
				}
				*dst = &n
				return nil
			}
			if fl.Changed("memory") || fl.Changed("memory-swap") || fl.Changed("memory-reservation") {
				if res.Memory == nil {
					res.Memory = &specs.LinuxMemory{}
				}
				for _, m := range []struct {
					name, v string
					dst     **int64
				}{{"memory", memory, &res.Memory.Limit}, {"memory-swap", memorySwap, &res.Memory.Swap}, {"memory-reservation", memoryReservation, &res.Memory.Reservation}} {
					if err := mem(m.name, m.v, m.dst); err != nil {
						return err
					}
				}
			}
			if fl.Changed("cpu-shares") || fl.Changed("cpu-period") || fl.Changed("cpu-quota") || fl.Changed("cpuset-cpus") || fl.Changed("cpuset-mems") {
				if res.CPU == nil {
					res.CPU = &specs.LinuxCPU{}
				}
				if fl.Changed("cpu-shares") {
					res.CPU.Shares = &cpuShares
				}
				if fl.Changed("cpu-period") {
					res.CPU.Period = &cpuPeriod
				}
				if fl.Changed("cpu-quota") {
					res.CPU.Quota = &cpuQuota
				}
				if fl.Changed("cpuset-cpus") {
					res.CPU.Cpus = cpusetCpus
				}
				if fl.Changed("cpuset-mems") {
					res.CPU.Mems = cpusetMems
				}
			}
			if fl.Changed("pids-limit") {
				res.Pids = &specs.LinuxPids{Limit: &pidsLimit}
			}
			if fl.Changed("blkio-weight") {
				res.BlockIO = &specs.LinuxBlockIO{Weight: &blkioWeight}
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			return errdefs.Context(rt.Update(cmd.Context(), id, res), "update", id)
		},
		ValidArgsFunction: a.completeID,
	}
	fl := cmd.Flags()
	fl.StringVarP(&resources, "resources", "r", "", "file with OCI linux.resources JSON (- for stdin)")
	_ = cmd.MarkFlagFilename("resources", "json")
	fl.StringVar(&memory, "memory", "", "memory limit (e.g. 256M; -1 for none)")
	fl.StringVar(&memorySwap, "memory-swap", "", "memory+swap limit")
	fl.StringVar(&memoryReservation, "memory-reservation", "", "memory soft limit")
	fl.Uint64Var(&cpuShares, "cpu-shares", 0, "CPU shares (relative weight)")
	fl.Uint64Var(&cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds")
	fl.Int64Var(&cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds")
	fl.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs to use (e.g. 0-1)")
	fl.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes to use")
	fl.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of pids")
	fl.Uint16Var(&blkioWeight, "blkio-weight", 0, "block IO weight (10-1000)")
	return cmd
}
