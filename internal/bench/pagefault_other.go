//go:build !unix

package bench

// mapAnon reports that this platform has no anonymous mappings the bench
// can time.
func mapAnon(int) ([]byte, bool, error) { return nil, false, nil }

func unmapAnon([]byte) error { return nil }
