// Command vztmpl-bench writes the template of a rootfs to a file with
// vztmpl.Write. It exists so bench/template.sh can time the library against
// `tar | zstd` as a process, the same way for both.
//
//	vztmpl-bench ROOTFS OUT
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/proxcage/proxcage/internal/vztmpl"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: vztmpl-bench ROOTFS OUT")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "vztmpl-bench:", err)
		os.Exit(1)
	}
}

func run(rootfs, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := vztmpl.Write(context.Background(), rootfs, f); err != nil {
		f.Close()
		return err
	}
	// No fsync: `zstd -o` does not sync either, and the benchmark compares
	// archiving, not the disk.
	return f.Close()
}
