package metadata

// SetBetweenStableReads makes StableOffsetsOf call f between its reads of
// transactions and of offsets, until the test ends.
func SetBetweenStableReads(t interface{ Cleanup(func()) }, f func()) {
	betweenStableReads = f
	t.Cleanup(func() { betweenStableReads = nil })
}
