package lxc

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The stand-in reads process.json with its own copy of processFile (it is
// a separate, small static binary): the two must have the same fields
// with the same JSON names and Go types.
func TestProcessFileMatchesTheStandIn(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../../../cmd/proxcage-lxc-init/main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	theirs := map[string]string{} // json tag -> type
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "processFile" {
			return true
		}
		for _, fl := range ts.Type.(*ast.StructType).Fields.List {
			typ := "?"
			switch x := fl.Type.(type) {
			case *ast.Ident:
				typ = x.Name
			case *ast.ArrayType:
				typ = "[]" + x.Elt.(*ast.Ident).Name
			}
			theirs[reflect.StructTag(fl.Tag.Value[1:len(fl.Tag.Value)-1]).Get("json")] = typ
		}
		return false
	})
	ours := map[string]string{}
	rt := reflect.TypeFor[processFile]()
	for i := range rt.NumField() {
		ours[rt.Field(i).Tag.Get("json")] = rt.Field(i).Type.String()
	}
	if !reflect.DeepEqual(ours, theirs) {
		t.Errorf("processFile differs from the stand-in's:\n ours   %v\n theirs %v", ours, theirs)
	}
}

// writeProcessFile writes what the translator decided, and a BPF program
// (whole sock_filter entries, 8 bytes each) for a profile.
func TestWriteProcessFile(t *testing.T) {
	dir := t.TempDir()
	si := StandIn{Inheritable: []int{10}, Ambient: []int{10}, NoNewPrivs: true}
	if err := writeProcessFile(dir, si); err != nil {
		t.Fatal(err)
	}
	var pf processFile
	data, err := os.ReadFile(filepath.Join(dir, "process.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pf); err != nil {
		t.Fatal(err)
	}
	if want := (processFile{Inheritable: []int{10}, Ambient: []int{10}, NoNewPrivs: true}); !reflect.DeepEqual(pf, want) {
		t.Errorf("process.json = %+v, want %+v", pf, want)
	}
	si.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
		{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
	}}
	err = writeProcessFile(dir, si)
	if !seccompBuilt {
		if err == nil {
			t.Fatal("a profile was accepted by a build without seccomp support")
		}
		t.Skip("built without -tags seccomp: the BPF compiler is not in this build")
	}
	if err != nil {
		t.Fatal(err)
	}
	bpf, err := os.ReadFile(filepath.Join(dir, "seccomp.bpf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(bpf) == 0 || len(bpf)%8 != 0 {
		t.Errorf("seccomp.bpf is %d bytes, not a whole number of sock_filter entries", len(bpf))
	}
	data, _ = os.ReadFile(filepath.Join(dir, "process.json"))
	if err := json.Unmarshal(data, &pf); err != nil || pf.Seccomp != "seccomp.bpf" {
		t.Errorf("process.json names %q (%v), want seccomp.bpf", pf.Seccomp, err)
	}
}
