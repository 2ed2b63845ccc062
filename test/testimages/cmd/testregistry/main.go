// Command testregistry serves proxcage's test images from an in-process
// registry on 127.0.0.1, for trying `proxcage run --image` by hand and for
// the benchmark scripts:
//
//	go run ./test/testimages/cmd/testregistry -port 5000 [-rootfs DIR]
//
// It prints one image reference per line, then serves until interrupted.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sort"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/proxcage/proxcage/test/testimages"
)

func main() {
	port := flag.Int("port", 5000, "port on 127.0.0.1 (0: any)")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox for test/busybox:1")
	rootfs := flag.String("rootfs", "", "a rootfs directory to serve as test/debian:1 (three layers)")
	flag.Parse()

	images := map[string]v1.Image{}
	bb, err := testimages.Busybox(*busybox)
	if err != nil {
		log.Fatal(err)
	}
	images["test/busybox:1"] = bb
	for _, v := range []string{"1", "2"} {
		if images["test/app:"+v], err = testimages.App(bb, v); err != nil {
			log.Fatal(err)
		}
	}
	if images["test/hostile:1"], err = testimages.Hostile(); err != nil {
		log.Fatal(err)
	}
	if *rootfs != "" {
		if images["test/debian:1"], err = testimages.FromRootfs(*rootfs); err != nil {
			log.Fatal(err)
		}
	}
	r, err := testimages.Serve(*port, nil, images)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	refs := make([]string, 0, len(images))
	for ref := range images {
		refs = append(refs, r.Host+"/"+ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		fmt.Println(ref)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
