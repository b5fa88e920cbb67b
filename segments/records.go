package segments

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Kafka record layout inside a RecordBatch v2, after the batch header (the
// records field, compressed as a whole when the batch is):
//
//	length          varint  bytes of the record after this field
//	attributes      int8    unused
//	timestampDelta  varlong from the batch's base timestamp
//	offsetDelta     varint
//	key, value, headers ...
//
// Varints are zigzag-encoded, as encoding/binary's Varint.

// xerialMagic starts a snappy payload framed as the Java client's
// snappy-java writes it: the magic, two int32 versions, then blocks each
// preceded by its int32 length. Other clients send one raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// snappyMaxExpansion bounds how much larger than its encoding a snappy
// block may claim to decode to: the densest element of the format, a
// three-byte copy of 64 bytes, expands 22 times. A larger claim is
// corrupt and is refused before anything is allocated.
const snappyMaxExpansion = 32

// zstdMaxWindow is the largest window a client's zstd frame may need:
// zstd's own default decoder limit (window log 27), which the Java
// client's and Kafka's decoders keep.
const zstdMaxWindow = 1 << 27

// RecordTimestamps calls fn with the index and timestamp of each record of
// the batch, in order, until fn returns an error, which it returns. A
// record's timestamp is the base timestamp plus its delta; in a batch
// whose timestamp type is LogAppendTime every record has the batch's max
// timestamp, and the records are not read.
//
// A batch the client compressed is decompressed as a stream, so memory
// stays small whatever it expands to (a snappy block is decoded whole).
// Records that do not decode are ErrCorruptBatch.
func (b *Batch) RecordTimestamps(fn func(i int, ts int64) error) error {
	if b.LogAppendTime() {
		for i := range int(b.RecordCount) {
			if err := fn(i, b.MaxTimestamp); err != nil {
				return err
			}
		}
		return nil
	}
	s, closeFn, err := b.records()
	if err != nil {
		return fmt.Errorf("%w: decompressing %v records: %v", ErrCorruptBatch, b.Compression(), err)
	}
	defer closeFn()
	for i := range int(b.RecordCount) {
		delta, err := s.timestampDelta()
		if err != nil {
			return fmt.Errorf("%w: record %d of %d: %v", ErrCorruptBatch, i, b.RecordCount, err)
		}
		if err := fn(i, b.BaseTimestamp+delta); err != nil {
			return err
		}
	}
	return nil
}

// records opens the batch's records field, decompressing it if needed.
func (b *Batch) records() (*recordStream, func(), error) {
	body := b.Raw[BatchHeaderSize:]
	var r io.Reader
	closeFn := func() {}
	switch b.Compression() {
	case CompressionNone:
		return &recordStream{buf: body}, closeFn, nil
	case CompressionGzip:
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		r, closeFn = zr, func() { zr.Close() }
	case CompressionSnappy:
		out, err := decodeSnappy(body)
		if err != nil {
			return nil, nil, err
		}
		return &recordStream{buf: out}, closeFn, nil
	case CompressionLZ4:
		r = lz4.NewReader(bytes.NewReader(body))
	case CompressionZstd:
		zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, nil, err
		}
		r, closeFn = zr, zr.Close
	default:
		return nil, nil, fmt.Errorf("unknown codec")
	}
	return &recordStream{br: bufio.NewReader(r)}, closeFn, nil
}

// decodeSnappy decodes a raw snappy block or snappy-java's framing.
func decodeSnappy(src []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return decodeSnappyBlock(nil, src)
	}
	if len(src) < 16 {
		return nil, errors.New("truncated snappy-java header")
	}
	var out []byte
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errors.New("truncated snappy-java block length")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("snappy-java block of %d bytes, %d left", n, len(rest))
		}
		var err error
		if out, err = decodeSnappyBlock(out, rest[:n]); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return out, nil
}

// decodeSnappyBlock appends the decoding of one snappy block to dst.
func decodeSnappyBlock(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > snappyMaxExpansion*len(block)+64 {
		return nil, fmt.Errorf("snappy block of %d bytes claims %d decoded", len(block), n)
	}
	dst = slices.Grow(dst, n)
	if _, err := s2.Decode(dst[len(dst):len(dst)+n], block); err != nil {
		return nil, err
	}
	return dst[:len(dst)+n], nil
}

// recordStream reads records: from buf when it holds them all, else from
// br, a decompressing reader.
type recordStream struct {
	buf []byte
	br  *bufio.Reader
	n   int // bytes consumed
}

func (s *recordStream) ReadByte() (byte, error) {
	if s.br != nil {
		c, err := s.br.ReadByte()
		if err == nil {
			s.n++
		}
		return c, err
	}
	if s.n >= len(s.buf) {
		return 0, io.ErrUnexpectedEOF
	}
	c := s.buf[s.n]
	s.n++
	return c, nil
}

func (s *recordStream) skip(k int) error {
	if s.br != nil {
		d, err := s.br.Discard(k)
		s.n += d
		return err
	}
	if k > len(s.buf)-s.n {
		return io.ErrUnexpectedEOF
	}
	s.n += k
	return nil
}

// timestampDelta reads the next record and returns its timestamp delta.
func (s *recordStream) timestampDelta() (int64, error) {
	length, err := binary.ReadVarint(s)
	if err != nil {
		return 0, fmt.Errorf("length: %w", err)
	}
	if length < 0 || length > math.MaxInt32 {
		return 0, fmt.Errorf("length %d", length)
	}
	start := s.n
	if _, err := s.ReadByte(); err != nil {
		return 0, fmt.Errorf("attributes: %w", err)
	}
	delta, err := binary.ReadVarint(s)
	if err != nil {
		return 0, fmt.Errorf("timestamp delta: %w", err)
	}
	read := int64(s.n - start)
	if read > length {
		return 0, fmt.Errorf("length %d is shorter than its first fields", length)
	}
	if err := s.skip(int(length - read)); err != nil {
		return 0, fmt.Errorf("record of %d bytes: %w", length, err)
	}
	return delta, nil
}
