//go:build !seccomp

package native

const seccompCompiledIn = false

func seccompVersion() string { return "" }
