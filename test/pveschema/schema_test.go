package pveschema

import (
	"reflect"
	"testing"
)

// testSchema is a small schema in the shape Load reads, with one parameter
// per rule under test.
const testSchema = `{
  "_comment": "test schema",
  "methods": {
    "create": {
      "path": "/nodes/{node}/lxc",
      "method": "POST",
      "properties": {
        "vmid":     {"type": "integer", "minimum": 100, "maximum": 999999999, "format": "pve-vmid"},
        "memory":   {"type": "integer", "minimum": 16, "maximum": 65536, "optional": 1},
        "cores":    {"type": "number", "minimum": 0.5, "optional": 1},
        "arch":     {"type": "string", "enum": ["amd64", "i386"], "optional": 1},
        "hostname": {"type": "string", "pattern": "(?^:[a-z]+)", "maxLength": 8, "optional": 1},
        "onboot":   {"type": "boolean", "optional": 1},
        "password": {"type": "string", "optional": 1, "requires": "hostname"},
        "net[n]":   {"type": "string", "optional": 1, "n_max": 3, "format": {
          "name":   {"type": "string", "pattern": "[a-z0-9]+"},
          "bridge": {"type": "string", "optional": 1},
          "rate":   {"type": "number", "optional": 1, "minimum": 0},
          "tag":    {"type": "integer", "optional": 1, "default_key": 1}
        }}
      }
    }
  }
}`

func loadTest(t *testing.T) *Method {
	t.Helper()
	ms, err := Load([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	m := ms["create"]
	if m == nil || m.Path != "/nodes/{node}/lxc" || m.HTTPMethod != "POST" {
		t.Fatalf("create: %+v", m)
	}
	return m
}

func TestValidate(t *testing.T) {
	m := loadTest(t)
	const notDefined = "property is not defined in schema and the schema does not allow additional properties"
	for _, tc := range []struct {
		name   string
		params map[string]string
		skip   []string
		want   Errors
	}{
		{"ok", map[string]string{"vmid": "100"}, nil, Errors{}},
		{"integer min", map[string]string{"vmid": "100", "memory": "8"}, nil,
			Errors{"memory": "value must have a minimum value of 16"}},
		{"integer max", map[string]string{"vmid": "100", "memory": "65537"}, nil,
			Errors{"memory": "value must have a maximum value of 65536"}},
		{"format before range", map[string]string{"vmid": "1000000000"}, nil,
			Errors{"vmid": "invalid format - value does not look like a valid VM ID"}},
		{"number min", map[string]string{"vmid": "100", "cores": "0.25"}, nil,
			Errors{"cores": "value must have a minimum value of 0.5"}},
		{"integer type", map[string]string{"vmid": "abc"}, nil,
			Errors{"vmid": "type check ('integer') failed - got 'abc'"}},
		{"named format", map[string]string{"vmid": "99"}, nil,
			Errors{"vmid": "invalid format - value does not look like a valid VM ID"}},
		{"enum", map[string]string{"vmid": "100", "arch": "arm64"}, nil,
			Errors{"arch": "value 'arm64' does not have a value in the enumeration 'amd64, i386'"}},
		{"pattern", map[string]string{"vmid": "100", "hostname": "Host1"}, nil,
			Errors{"hostname": "value does not match the regex pattern"}},
		{"max length", map[string]string{"vmid": "100", "hostname": "abcdefghi"}, nil,
			Errors{"hostname": "value may only be 8 characters long"}},
		{"boolean", map[string]string{"vmid": "100", "onboot": "maybe"}, nil,
			Errors{"onboot": "type check ('boolean') failed - got 'maybe'"}},
		{"missing", map[string]string{}, nil,
			Errors{"vmid": "property is missing and it is not optional"}},
		{"skipped", map[string]string{"node": "pve"}, []string{"node", "vmid"}, Errors{}},
		{"unknown", map[string]string{"vmid": "100", "bogus": "1"}, nil,
			Errors{"bogus": notDefined}},
		{"index beyond n_max", map[string]string{"vmid": "100", "net4": "name=eth0"}, nil,
			Errors{"net4": notDefined}},
		{"requires", map[string]string{"vmid": "100", "password": "x"}, nil,
			Errors{"hostname": "missing property - 'password' requires this property"}},
		{"property string bad key", map[string]string{"vmid": "100", "net0": "name=eth0,speed=10"}, nil,
			Errors{"net0": "invalid format - format error", "net0.speed": notDefined}},
		{"property string missing key", map[string]string{"vmid": "100", "net0": "bridge=vmbr0"}, nil,
			Errors{"net0": "invalid format - format error", "net0.name": "property is missing and it is not optional"}},
		{"property string sub-value", map[string]string{"vmid": "100", "net0": "name=eth0,rate=x"}, nil,
			Errors{"net0": "invalid format - format error", "net0.rate": "type check ('number') failed - got 'x'"}},
		{"property string duplicate", map[string]string{"vmid": "100", "net0": "name=a,name=b"}, nil,
			Errors{"net0": "invalid format - duplicate key in comma-separated list property: name"}},
		{"property string missing value", map[string]string{"vmid": "100", "net0": "name="}, nil,
			Errors{"net0": "invalid format - missing value for key in comma-separated list property: name="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.Validate(tc.params, tc.skip...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Validate(%v) = %v, want %v", tc.params, got, tc.want)
			}
		})
	}
}

func TestValidateNormalises(t *testing.T) {
	m := loadTest(t)
	params := map[string]string{"vmid": "100", "onboot": "Yes", "net1": "rate=5,7,bridge=vmbr0,name=eth1"}
	if errs := m.Validate(params); len(errs) != 0 {
		t.Fatal(errs)
	}
	// Booleans become 1/0; property strings are re-printed default key
	// first, then required keys, then the rest, sorted.
	if params["onboot"] != "1" || params["net1"] != "7,name=eth1,bridge=vmbr0,rate=5" {
		t.Fatalf("normalised: %v", params)
	}
}

func TestParseBoolean(t *testing.T) {
	for in, want := range map[string]string{
		"1": "1", "on": "1", "yes": "1", "true": "1", "TRUE": "1", "On": "1",
		"0": "0", "off": "0", "no": "0", "false": "0", "No": "0",
	} {
		if got, ok := ParseBoolean(in); !ok || got != want {
			t.Errorf("ParseBoolean(%q) = %q, %v; want %q, true", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "2", "y", "enabled"} {
		if got, ok := ParseBoolean(in); ok || got != in {
			t.Errorf("ParseBoolean(%q) = %q, %v; want %q, false", in, got, ok, in)
		}
	}
}

func TestLookupAndPropertyStrings(t *testing.T) {
	m := loadTest(t)
	if m.Lookup("net0") == nil || m.Lookup("net3") == nil || m.Lookup("net4") != nil || m.Lookup("net") != nil || m.Lookup("bogus") != nil {
		t.Fatal("Lookup of indexed parameters")
	}
	format := m.Lookup("net2").PropertyFormat
	got := SplitPropertyString(format, "7,name=eth0,bridge=vmbr0")
	want := map[string]string{"tag": "7", "name": "eth0", "bridge": "vmbr0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SplitPropertyString = %v", got)
	}
	if s := PrintPropertyString(format, got); s != "7,name=eth0,bridge=vmbr0" {
		t.Fatalf("PrintPropertyString = %q", s)
	}
	if m.Lookup("vmid").NamedFormat != "pve-vmid" {
		t.Fatal("named format not decoded")
	}
}

func TestLoadRejectsBadPattern(t *testing.T) {
	if _, err := Load([]byte(`{"methods": {"m": {"properties": {"x": {"type": "string", "pattern": "("}}}}}`)); err == nil {
		t.Fatal("Load accepted an invalid pattern")
	}
	if _, err := CompilePattern(`(?^:a\0b)`); err != nil {
		t.Fatal(err)
	}
}
