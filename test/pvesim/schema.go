package pvesim

import (
	_ "embed"
	"sync"

	"github.com/proxcage/proxcage/test/pveschema"
)

// The parameter rules come from the official PVE 9.1 API schema, reduced by
// test/pveschema/gen_schema.go into testdata/pve-api-schema.json and embedded here; the
// validator (PVE::JSONSchema rules) is test/pveschema.
//
//go:embed testdata/pve-api-schema.json
var schemaJSON []byte

// The few methods the shared subset lacks, written by hand (see its
// _comment).
//
//go:embed testdata/pve-api-schema-extra.json
var schemaExtraJSON []byte

var (
	schemaOnce    sync.Once
	schemaMethods map[string]*pveschema.Method
	schemaErr     error
)

func loadSchema() (map[string]*pveschema.Method, error) {
	schemaOnce.Do(func() {
		schemaMethods, schemaErr = pveschema.Load(schemaJSON)
		if schemaErr != nil {
			return
		}
		var extra map[string]*pveschema.Method
		if extra, schemaErr = pveschema.Load(schemaExtraJSON); schemaErr == nil {
			for k, m := range extra {
				schemaMethods[k] = m
			}
		}
	})
	return schemaMethods, schemaErr
}

// schemaFor returns the schema of "METHOD /path/{template}", or nil.
func schemaFor(key string) *pveschema.Method {
	ms, err := loadSchema()
	if err != nil {
		panic("pvesim: embedded schema: " + err.Error())
	}
	return ms[key]
}
