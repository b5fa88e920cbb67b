package metadata

import "testing"

func TestEtcdBefore(t *testing.T) {
	for _, tc := range []struct {
		v          string
		before, ok bool
	}{
		{"3.4.23", true, true},
		{"3.5.0", false, true},
		{"3.6.16", false, true},
		{"4.0.0", false, true},
		{"2.3.8", true, true},
		{"3", false, false},
		{"x.y.z", false, false},
		{"", false, false},
	} {
		before, ok := etcdBefore(tc.v, 3, 5)
		if before != tc.before || ok != tc.ok {
			t.Errorf("etcdBefore(%q) = %v, %v; want %v, %v", tc.v, before, ok, tc.before, tc.ok)
		}
	}
}
