package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 46182: "45.1 KiB",
		3 << 20: "3.0 MiB", 1<<30 + 1<<29: "1.5 GiB", 1 << 60: "1.0 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
