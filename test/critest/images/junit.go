package main

import (
	"encoding/xml"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
)

type junitMsg struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

type junitCase struct {
	Name    string    `xml:"name,attr"`
	Status  string    `xml:"status,attr"`
	Skipped *junitMsg `xml:"skipped"`
	Failure *junitMsg `xml:"failure"`
	Error   *junitMsg `xml:"error"`
}

type junitReport struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

// junit counts specs: [BeforeSuite]/[AfterSuite] entries count only when
// they fail (then nothing ran, and the report must not read as a pass).
func junit(file, outdir string) {
	data, err := os.ReadFile(file)
	if err != nil {
		log.Fatal(err)
	}
	var r junitReport
	if err := xml.Unmarshal(data, &r); err != nil {
		log.Fatalf("%s: %v", file, err)
	}
	var passed, failed, skipped int
	var fails, skips, all strings.Builder
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			n := strings.TrimPrefix(c.Name, "[It] ")
			fail := c.Failure
			if fail == nil {
				fail = c.Error
			}
			suiteNode := strings.HasPrefix(c.Name, "[BeforeSuite]") || strings.HasPrefix(c.Name, "[AfterSuite]") ||
				strings.HasPrefix(c.Name, "[SynchronizedBeforeSuite]") || strings.HasPrefix(c.Name, "[SynchronizedAfterSuite]")
			switch {
			case fail != nil || c.Status == "failed" || c.Status == "panicked" || c.Status == "timedout" || c.Status == "interrupted" || c.Status == "aborted":
				failed++
				fmt.Fprintf(&all, "failed\t%s\n", n)
				msg := ""
				if fail != nil {
					msg = strings.TrimSpace(fail.Message)
					if msg == "" {
						msg = strings.TrimSpace(fail.Text)
					}
				}
				if len(msg) > 1500 {
					msg = msg[:1500] + "..."
				}
				fmt.Fprintf(&fails, "%s\n    %s\n", n, strings.ReplaceAll(msg, "\n", "\n    "))
			case suiteNode:
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				skipped++
				fmt.Fprintf(&all, "skipped\t%s\n", n)
				why := ""
				if c.Skipped != nil {
					why = strings.TrimPrefix(strings.TrimSpace(c.Skipped.Message), "skipped - ")
				}
				if why == "" {
					why = "skipped"
				}
				fmt.Fprintf(&skips, "%s\t%s\n", n, strings.ReplaceAll(why, "\n", " "))
			default:
				passed++
				fmt.Fprintf(&all, "passed\t%s\n", n)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(outdir, "failed.txt"), []byte(fails.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outdir, "results.tsv"), []byte(all.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outdir, "skipped.txt"), []byte(skips.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d %d %d\n", passed, failed, skipped)
}
