package schemaregistry

import (
	"encoding/binary"
	"fmt"
)

// MagicByte opens every value of the Confluent wire format.
const MagicByte = 0

// HeaderLen is the length of the magic byte and the schema ID.
const HeaderLen = 5

// maxMessageIndexes bounds the message indexes of a Protobuf value: how
// deep its message is nested.
const maxMessageIndexes = 64

// ParseHeader reads a value's magic byte and schema ID, and returns the
// ID and the rest of the value. The error matches ErrWireFormat.
func ParseHeader(value []byte) (id int, rest []byte, err error) {
	switch {
	case len(value) == 0:
		return 0, nil, &wireError{"the value is empty, not in the Confluent wire format (magic byte 0, then a 4-byte schema ID)"}
	case value[0] != MagicByte:
		return 0, nil, &wireError{fmt.Sprintf("the value starts with byte 0x%02x, not the Confluent wire format's magic byte 0", value[0])}
	case len(value) < HeaderLen:
		return 0, nil, &wireError{fmt.Sprintf("the value is %d bytes, shorter than the Confluent wire format's header (magic byte, 4-byte schema ID)", len(value))}
	}
	return int(binary.BigEndian.Uint32(value[1:5])), value[HeaderLen:], nil
}

// ParseMessageIndexes reads the message indexes after a Protobuf value's
// header, appending them to dst[:0], and returns them and the message's
// bytes. The error matches ErrWireFormat.
func ParseMessageIndexes(b []byte, dst []int) (indexes []int, rest []byte, err error) {
	n, k := binary.Varint(b)
	if k <= 0 {
		return nil, nil, &wireError{"the value's Protobuf message indexes are truncated"}
	}
	b = b[k:]
	dst = dst[:0]
	switch {
	case n == 0:
		return append(dst, 0), b, nil
	case n < 0 || n > maxMessageIndexes:
		return nil, nil, &wireError{fmt.Sprintf("the value's Protobuf message index count %d is not between 0 and %d", n, maxMessageIndexes)}
	}
	for range n {
		i, k := binary.Varint(b)
		if k <= 0 {
			return nil, nil, &wireError{"the value's Protobuf message indexes are truncated"}
		}
		if i < 0 || i > 1<<20 {
			return nil, nil, &wireError{fmt.Sprintf("the value's Protobuf message index %d is out of range", i)}
		}
		dst = append(dst, int(i))
		b = b[k:]
	}
	return dst, b, nil
}

// AppendHeader appends the magic byte and schema ID to dst.
func AppendHeader(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, MagicByte), uint32(id))
}

// AppendMessageIndexes appends Protobuf message indexes to dst, [0] as
// the single byte 0 as Confluent's serializers write it.
func AppendMessageIndexes(dst []byte, indexes []int) []byte {
	if len(indexes) == 1 && indexes[0] == 0 {
		return append(dst, 0)
	}
	dst = binary.AppendVarint(dst, int64(len(indexes)))
	for _, i := range indexes {
		dst = binary.AppendVarint(dst, int64(i))
	}
	return dst
}
