package schemaregistry

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestWireFormat(t *testing.T) {
	v := AppendHeader(nil, 0x01020304)
	if !bytes.Equal(v, []byte{0, 1, 2, 3, 4}) {
		t.Fatalf("header %x", v)
	}
	for _, idx := range [][]int{{0}, {1}, {0, 2}, {3, 0, 1}} {
		b := append(AppendMessageIndexes(AppendHeader(nil, 7), idx), 'x')
		id, rest, err := ParseHeader(b)
		if err != nil || id != 7 {
			t.Fatalf("%v: %d %v", idx, id, err)
		}
		got, rest, err := ParseMessageIndexes(rest, nil)
		if err != nil || !reflect.DeepEqual(got, idx) || string(rest) != "x" {
			t.Errorf("%v: got %v %q %v", idx, got, rest, err)
		}
	}
	// [0] is one byte 0, as Confluent writes it; the long form reads too.
	if b := AppendMessageIndexes(nil, []int{0}); !bytes.Equal(b, []byte{0}) {
		t.Errorf("[0] is %x", b)
	}
	if got, _, err := ParseMessageIndexes([]byte{2, 0}, nil); err != nil || !reflect.DeepEqual(got, []int{0}) {
		t.Errorf("count 1, index 0: %v %v", got, err)
	}
	for _, bad := range [][]byte{nil, {1}, {0, 0, 0}, {0x7b, 0, 0, 0, 0}} {
		if _, _, err := ParseHeader(bad); !errors.Is(err, ErrWireFormat) {
			t.Errorf("header %x: %v", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {4, 2}, {0x80}, {2, 1}, {0xfe, 0x01}} {
		if _, _, err := ParseMessageIndexes(bad, nil); !errors.Is(err, ErrWireFormat) {
			t.Errorf("indexes %x: %v", bad, err)
		}
	}
}

// FuzzParseMessageIndexes: any input gives indexes and the rest of the
// input, or ErrWireFormat; never a panic.
func FuzzParseMessageIndexes(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{4, 2, 4, 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, rest, err := ParseMessageIndexes(b, nil)
		if err != nil {
			if !errors.Is(err, ErrWireFormat) {
				t.Fatalf("error %v is not ErrWireFormat", err)
			}
			return
		}
		if len(idx) == 0 || len(idx) > maxMessageIndexes || len(rest) >= len(b) {
			t.Fatalf("%x: %v, %d bytes left", b, idx, len(rest))
		}
		again, rest2, err := ParseMessageIndexes(AppendMessageIndexes(nil, idx), nil)
		if err != nil || !reflect.DeepEqual(again, idx) || len(rest2) != 0 {
			t.Fatalf("%v does not round-trip: %v %v", idx, again, err)
		}
	})
}
