// Package rules carries the shipped rule packs into the iocd binary, so
// that iocd runs from any directory with the Huế pack in force.
package rules

import _ "embed"

// Builtin is the IOC_RULES value that selects the pack built into the
// binary (hue.yaml beside this file) instead of a file.
const Builtin = "builtin:hue"

// Hue is the Huế rule pack.
//
//go:embed hue.yaml
var Hue []byte
