package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// registerAnnotations adds podman's --annotation flag.
func registerAnnotations(cmd *cobra.Command, to *[]string) {
	cmd.Flags().StringArrayVar(to, "annotation", nil,
		"set an annotation KEY=VALUE (repeatable), over the bundle's: the backend (org.proxcage.backend) and backend options (org.proxcage.vmid, ...), which an image's labels can never set")
}

// parseAnnotations reads --annotation values.
func parseAnnotations(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &errdefs.Error{Cat: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf("--annotation %q: want KEY=VALUE", kv),
				Hint: "for example --annotation org.proxcage.vmid=4242 (podman's spelling); an empty value is KEY="}
		}
		out[k] = v
	}
	return out, nil
}
