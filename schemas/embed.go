// Package schemas embeds the published schemas so that the binaries carry
// the exact files that publishers and operators read.
package schemas

import "embed"

// ClickHouse holds the versioned migrations, applied in file-name order.
//
//go:embed clickhouse/*.sql
var ClickHouse embed.FS
