package pvesim

import (
	_ "embed"

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

var schema = pveschema.NewEmbedded(schemaJSON, schemaExtraJSON)

// schemaFor returns the schema of "METHOD /path/{template}", or nil.
func schemaFor(key string) *pveschema.Method { return schema.Method("pvesim", key) }
