// Command subids-hold holds the subordinate ids a PVE node has for root
// (package subids) for a shell script that runs unprivileged CTs on the pct
// double (test/validation/pve.sh): it prints "ready" once both files grant
// them, and gives back what it added when it is signalled or its parent
// (the script) is gone.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/proxcage/proxcage/test/subids"
)

func main() {
	release, err := subids.Acquire("subids-hold")
	if err != nil {
		fmt.Fprintln(os.Stderr, "subids-hold:", err)
		os.Exit(1)
	}
	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	parent := os.Getppid()
	go func() {
		for os.Getppid() == parent {
			time.Sleep(200 * time.Millisecond)
		}
		done <- syscall.SIGHUP
	}()
	fmt.Println("ready")
	<-done
	release()
}
