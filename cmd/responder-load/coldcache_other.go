//go:build !(linux && (amd64 || arm64))

package main

import "fmt"

func evictFile(path string) error {
	return fmt.Errorf("evict %s: not supported on this system", path)
}
