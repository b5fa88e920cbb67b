package segments

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// DecodeExtent decodes one partition's extent, the bytes
// [Extent.Offset, Extent.End()) of a segment object, and calls fn for every
// batch in order, with its ordinal (0, 1, 2, ... as Builder.Append returned).
//
// Before fn is first called, every chunk's header and CRC is verified, and
// that the chunks follow each other from the extent's first to its last: a
// corrupt or truncated extent fails as a whole with ErrCorruptSegment (or
// ErrUnsupportedVersion) and fn is never called. (Only content that passes
// its CRC yet does not decompress to the batches its header declares, which
// a faulty writer could produce, fails when its chunk is reached, after the
// batches of earlier chunks.) Memory is bounded by one decompressed chunk (at
// most MaxChunkRawSize).
//
// The batch slice is only valid during fn: it aliases data for chunks stored
// uncompressed, and a reused buffer otherwise. fn may modify the batch in
// place (SetBaseOffset before serving, say); for an uncompressed chunk that
// modifies data, whose chunk CRC will no longer match. An error from fn stops
// decoding and is returned as is.
//
// DecodeExtent is safe for concurrent use.
func DecodeExtent(data []byte, fn func(ordinal int, batch []byte) error) error {
	if err := verifyExtent(data); err != nil {
		return err
	}
	bufp := decodeBufs.Get().(*[]byte)
	err := decodeExtent(data, bufp, fn)
	if cap(*bufp) <= maxRetainedBuffer {
		decodeBufs.Put(bufp)
	}
	return err
}

// DecodeExtentBatches decodes an extent like DecodeExtent and returns its
// batches. They remain valid after the call: batches of uncompressed chunks
// alias data, the others are in buffers allocated for the call.
func DecodeExtentBatches(data []byte) ([][]byte, error) {
	if err := verifyExtent(data); err != nil {
		return nil, err
	}
	var batches [][]byte
	err := decodeExtent(data, nil, func(_ int, batch []byte) error {
		batches = append(batches, batch)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return batches, nil
}

// ExtentRawLen returns the bytes of batches an extent holds once decoded,
// from its chunk headers, so a caller can size a buffer for DecodeExtent's
// batches before decoding. It checks the headers' framing but not their
// CRCs (DecodeExtent does).
func ExtentRawLen(data []byte) (int, error) {
	n := 0
	for pos := 0; pos < len(data); {
		h, stored, err := readChunk(data[pos:], false)
		if err != nil {
			return 0, err
		}
		n += int(h.rawLen)
		pos += ChunkHeaderSize + len(stored)
	}
	return n, nil
}

var decodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// readChunk parses and checks the chunk header at the start of data and
// returns it with the chunk's stored bytes. The CRC is checked if verify.
func readChunk(data []byte, verify bool) (chunkHeader, []byte, error) {
	if len(data) < ChunkHeaderSize {
		return chunkHeader{}, nil, fmt.Errorf("%w: truncated chunk header: %d bytes", ErrCorruptSegment, len(data))
	}
	if err := checkVersion("chunk", le.Uint16(data[4:])); err != nil {
		return chunkHeader{}, nil, err
	}
	h := chunkHeader{
		codec:        Codec(data[6]),
		flags:        data[7],
		storedLen:    le.Uint32(data[8:]),
		rawLen:       le.Uint32(data[12:]),
		batchCount:   le.Uint32(data[16:]),
		firstOrdinal: le.Uint32(data[20:]),
	}
	if uint64(h.storedLen) > uint64(len(data)-ChunkHeaderSize) {
		return chunkHeader{}, nil, fmt.Errorf("%w: chunk stores %d bytes, only %d follow its header",
			ErrCorruptSegment, h.storedLen, len(data)-ChunkHeaderSize)
	}
	stored := data[ChunkHeaderSize : ChunkHeaderSize+int(h.storedLen)]
	if verify {
		crc := crc32.Update(0, castagnoli, data[4:ChunkHeaderSize])
		crc = crc32.Update(crc, castagnoli, stored)
		if want := le.Uint32(data); crc != want {
			return chunkHeader{}, nil, fmt.Errorf("%w: chunk CRC %08x, stored %08x", ErrCorruptSegment, crc, want)
		}
	}
	switch {
	case !h.codec.valid():
		return chunkHeader{}, nil, fmt.Errorf("%w: unknown chunk codec %d", ErrCorruptSegment, h.codec)
	case h.flags&^chunkFlagLast != 0:
		return chunkHeader{}, nil, fmt.Errorf("%w: unknown chunk flags %#02x", ErrCorruptSegment, h.flags)
	case h.batchCount == 0 || uint64(h.batchCount)*BatchHeaderSize > uint64(h.rawLen):
		return chunkHeader{}, nil, fmt.Errorf("%w: %d batches cannot fit %d raw bytes", ErrCorruptSegment, h.batchCount, h.rawLen)
	case h.codec == CodecNone && h.rawLen != h.storedLen:
		return chunkHeader{}, nil, fmt.Errorf("%w: uncompressed chunk stores %d bytes, declares %d raw",
			ErrCorruptSegment, h.storedLen, h.rawLen)
	case h.codec != CodecNone && h.rawLen > MaxChunkRawSize:
		return chunkHeader{}, nil, fmt.Errorf("%w: compressed chunk declares %d raw bytes, the limit is %d",
			ErrCorruptSegment, h.rawLen, MaxChunkRawSize)
	}
	return h, stored, nil
}

// verifyExtent checks every chunk header and CRC of an extent, and that the
// chunks' ordinals follow on and the last one is flagged and ends the data.
func verifyExtent(data []byte) error {
	var ordinal uint64
	for i, pos := 0, 0; ; i++ {
		if pos == len(data) {
			return fmt.Errorf("%w: extent of %d bytes ends without its last chunk (truncated read?)",
				ErrCorruptSegment, len(data))
		}
		h, stored, err := readChunk(data[pos:], true)
		if err != nil {
			return fmt.Errorf("chunk %d at extent byte %d: %w", i, pos, err)
		}
		if uint64(h.firstOrdinal) != ordinal {
			return fmt.Errorf("%w: chunk %d at extent byte %d starts at batch %d, expected %d (read not at the extent start?)",
				ErrCorruptSegment, i, pos, h.firstOrdinal, ordinal)
		}
		ordinal += uint64(h.batchCount)
		pos += ChunkHeaderSize + len(stored)
		if h.flags&chunkFlagLast != 0 {
			if pos != len(data) {
				return fmt.Errorf("%w: %d bytes after the extent's last chunk", ErrCorruptSegment, len(data)-pos)
			}
			return nil
		}
	}
}

// decodeExtent decodes the chunks of an extent verified by verifyExtent.
// Compressed chunks are decoded into *bufp, or into new buffers if bufp is
// nil.
func decodeExtent(data []byte, bufp *[]byte, fn func(int, []byte) error) error {
	ordinal := 0
	for i, pos := 0, 0; pos < len(data); i++ {
		h, stored, err := readChunk(data[pos:], false)
		if err != nil {
			return fmt.Errorf("chunk %d at extent byte %d: %w", i, pos, err)
		}
		var dst []byte
		if bufp != nil {
			dst = *bufp
		}
		raw, err := decompressChunk(h.codec, int(h.rawLen), stored, dst)
		if err != nil {
			return fmt.Errorf("chunk %d at extent byte %d: %w", i, pos, err)
		}
		if bufp != nil && h.codec != CodecNone && cap(raw) > cap(*bufp) {
			*bufp = raw[:0] // keep the larger buffer for the next chunk
		}
		if err := splitBatches(raw, int(h.batchCount), nil); err != nil {
			return fmt.Errorf("chunk %d at extent byte %d: %w", i, pos, err)
		}
		if err := splitBatches(raw, int(h.batchCount), func(j int, batch []byte) error {
			return fn(ordinal+j, batch)
		}); err != nil {
			return err
		}
		ordinal += int(h.batchCount)
		pos += ChunkHeaderSize + len(stored)
	}
	return nil
}

// zstdSlack is the output capacity given to the zstd decoder beyond a
// chunk's raw size: one maximum-size zstd block (128 KiB) and the 16 bytes
// the decoder may over-allocate.
const zstdSlack = 128<<10 + 16

// decompressChunk returns the raw bytes of a chunk whose header declares
// codec and rawLen. dst is a buffer to decode into if large enough.
func decompressChunk(codec Codec, rawLen int, stored, dst []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		if len(stored) != rawLen {
			return nil, fmt.Errorf("%w: uncompressed chunk of %d bytes declares %d", ErrCorruptSegment, len(stored), rawLen)
		}
		return stored, nil
	case CodecZstd:
		if rawLen > MaxChunkRawSize {
			return nil, fmt.Errorf("%w: chunk declares %d raw bytes, the limit is %d", ErrCorruptSegment, rawLen, MaxChunkRawSize)
		}
		// Check the declared size in the frame before allocating for it.
		var fh zstd.Header
		if err := fh.Decode(stored); err != nil {
			return nil, fmt.Errorf("%w: zstd chunk: frame header: %v", ErrCorruptSegment, err)
		}
		if fh.Skippable || !fh.HasFCS || fh.FrameContentSize != uint64(rawLen) || fh.DictionaryID != 0 {
			return nil, fmt.Errorf("%w: zstd chunk: frame declares %d bytes (known: %v, dictionary %d), chunk %d",
				ErrCorruptSegment, fh.FrameContentSize, fh.HasFCS, fh.DictionaryID, rawLen)
		}
		_, dec, err := zstdCodecs()
		if err != nil {
			return nil, err
		}
		// The decoder stops once output passes the capacity given
		// (WithDecodeAllCapLimit), or the frame's declared size, after
		// the block that did; the slack keeps that block from making it
		// reallocate.
		limit := rawLen + zstdSlack
		if cap(dst) < limit {
			dst = make([]byte, 0, limit)
		}
		raw, err := dec.DecodeAll(stored, dst[:0:limit])
		if err != nil {
			return nil, fmt.Errorf("%w: decompressing zstd chunk: %v", ErrCorruptSegment, err)
		}
		if len(raw) != rawLen {
			return nil, fmt.Errorf("%w: zstd chunk decompressed to %d bytes, declares %d", ErrCorruptSegment, len(raw), rawLen)
		}
		return raw, nil
	case CodecS2:
		n, err := s2.DecodedLen(stored)
		if err != nil {
			return nil, fmt.Errorf("%w: decompressing s2 chunk: %v", ErrCorruptSegment, err)
		}
		if n != rawLen || rawLen > MaxChunkRawSize {
			return nil, fmt.Errorf("%w: s2 chunk decompresses to %d bytes, declares %d", ErrCorruptSegment, n, rawLen)
		}
		if cap(dst) < rawLen {
			dst = make([]byte, rawLen)
		}
		raw, err := s2.Decode(dst[:rawLen], stored)
		if err != nil {
			return nil, fmt.Errorf("%w: decompressing s2 chunk: %v", ErrCorruptSegment, err)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("%w: unknown chunk codec %d", ErrCorruptSegment, codec)
}

// splitBatches checks that raw is exactly count v2 batches and, if fn is not
// nil, calls it with each. Batches are given with their capacity cut to
// their length.
func splitBatches(raw []byte, count int, fn func(int, []byte) error) error {
	for i := range count {
		if len(raw) < BatchHeaderSize {
			return fmt.Errorf("%w: batch %d of %d truncated: %d bytes left", ErrCorruptSegment, i, count, len(raw))
		}
		length := int32(binary.BigEndian.Uint32(raw[offBatchLength:]))
		if length < minBatchLength || int64(length)+batchLengthOverhead > int64(len(raw)) {
			return fmt.Errorf("%w: batch %d of %d: length %d with %d bytes left", ErrCorruptSegment, i, count, length, len(raw))
		}
		if raw[offMagic] != BatchMagic {
			return fmt.Errorf("%w: batch %d of %d: magic %d", ErrCorruptSegment, i, count, int8(raw[offMagic]))
		}
		n := int(length) + batchLengthOverhead
		if fn != nil {
			if err := fn(i, raw[:n:n]); err != nil {
				return err
			}
		}
		raw = raw[n:]
	}
	if len(raw) != 0 {
		return fmt.Errorf("%w: %d bytes after the chunk's %d batches", ErrCorruptSegment, len(raw), count)
	}
	return nil
}

// DecodeObject decodes and verifies the header, trailer and footer of a
// whole object, and that the extents fill the space between header and
// footer exactly. It does not decompress chunks: decode each extent with
// DecodeExtent(object[e.Offset:e.End()], ...).
func DecodeObject(object []byte) (Header, []Extent, error) {
	if len(object) < HeaderSize+footerFixedSize+TrailerSize {
		return Header{}, nil, fmt.Errorf("%w: object of %d bytes is too small", ErrCorruptSegment, len(object))
	}
	h, err := decodeHeader(object)
	if err != nil {
		return Header{}, nil, err
	}
	off, n, err := DecodeTrailer(object)
	if err != nil {
		return Header{}, nil, err
	}
	if off+n+TrailerSize != int64(len(object)) {
		return Header{}, nil, fmt.Errorf("%w: trailer puts a %d-byte footer at %d, object is %d bytes",
			ErrCorruptSegment, n, off, len(object))
	}
	footer := object[off : off+n]
	extents, err := DecodeFooter(footer)
	if err != nil {
		return Header{}, nil, err
	}
	if err := checkObjectVersions(h.Version, footer, object[len(object)-TrailerSize:]); err != nil {
		return Header{}, nil, err
	}
	if err := checkDataEnd(extents, off); err != nil {
		return Header{}, nil, err
	}
	return h, extents, nil
}

// checkObjectVersions checks that footer and trailer were written in the
// header's version: all parts of one object come from one writer.
func checkObjectVersions(header uint16, footer, trailer []byte) error {
	if f, t := le.Uint16(footer), le.Uint16(trailer[22:]); f != header || t != header {
		return fmt.Errorf("%w: header version %d, footer %d, trailer %d", ErrCorruptSegment, header, f, t)
	}
	return nil
}

// checkDataEnd checks that the extents end where the footer starts.
func checkDataEnd(extents []Extent, footerOffset int64) error {
	end := int64(HeaderSize)
	if len(extents) > 0 {
		end = extents[len(extents)-1].End()
	}
	if end != footerOffset {
		return fmt.Errorf("%w: extents end at %d, footer starts at %d", ErrCorruptSegment, end, footerOffset)
	}
	return nil
}

// footerReadAhead is how much of the object's end ReadFooter fetches in its
// first request: enough for the trailer and the footer of an object with
// about 900 extents, so most footers take one GET rather than two.
const footerReadAhead = 64 << 10

// ReadFooter reads and verifies the footer of the object at key, which is
// size bytes long, with one ranged GET (two if the footer is larger than
// footerReadAhead), and returns its extents.
func ReadFooter(ctx context.Context, r BucketReader, key string, size int64) ([]Extent, error) {
	extents, err := readFooter(ctx, r, key, size)
	if err != nil {
		return nil, fmt.Errorf("reading footer of segment %s: %w", key, err)
	}
	return extents, nil
}

func readFooter(ctx context.Context, r BucketReader, key string, size int64) ([]Extent, error) {
	if size < HeaderSize+footerFixedSize+TrailerSize || size > MaxObjectSize {
		return nil, fmt.Errorf("%w: object size %d out of range", ErrCorruptSegment, size)
	}
	tailLen := min(size-HeaderSize, footerReadAhead)
	tailOff := size - tailLen
	tail, err := readRange(ctx, r, key, tailOff, tailLen)
	if err != nil {
		return nil, err
	}
	off, n, err := DecodeTrailer(tail)
	if err != nil {
		return nil, err
	}
	if off+n+TrailerSize != size {
		return nil, fmt.Errorf("%w: trailer puts a %d-byte footer at %d, object is %d bytes", ErrCorruptSegment, n, off, size)
	}
	var footer []byte
	if off >= tailOff {
		footer = tail[off-tailOff:][:n]
	} else if footer, err = readRange(ctx, r, key, off, n); err != nil {
		return nil, err
	}
	extents, err := DecodeFooter(footer)
	if err != nil {
		return nil, err
	}
	// The header is not read; the footer and trailer carry the version.
	if f, t := le.Uint16(footer), le.Uint16(tail[len(tail)-TrailerSize+22:]); f != t {
		return nil, fmt.Errorf("%w: footer version %d, trailer %d", ErrCorruptSegment, f, t)
	}
	if err := checkDataEnd(extents, off); err != nil {
		return nil, err
	}
	return extents, nil
}

// readRange reads exactly n bytes at off of the object at key.
func readRange(ctx context.Context, r BucketReader, key string, off, n int64) ([]byte, error) {
	rc, err := r.GetRange(ctx, key, off, n)
	if err != nil {
		return nil, fmt.Errorf("reading bytes %d-%d: %w", off, off+n-1, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: reading bytes %d-%d: object shorter than its stated size", ErrCorruptSegment, off, off+n-1)
		}
		return nil, fmt.Errorf("reading bytes %d-%d: %w", off, off+n-1, err)
	}
	return buf, nil
}

// AssignedBatch is a batch of an extent as ReadExtent copies it out: at
// Start in the arena, with base offset Base and last offset Last.
type AssignedBatch struct {
	Ordinal    int
	Raw        []byte
	Start      int
	Base, Last int64
}

// ReadExtent decodes an extent (DecodeExtent) and gives its batches their
// offsets, as the partition's log holds them: the batches whose ordinals
// are in skip (ascending; batches a commit refused) are dropped, and each
// other batch is appended to arena with its base offset set to next,
// which starts at first and then follows the batch's last offset (base +
// lastOffsetDelta). A batch's offsets are its span, not its record count:
// a compacted batch keeps the offsets of the records it lost.
//
// fn, when not nil, sees each batch as appended (Raw aliases the arena
// until it next grows). ReadExtent returns the grown arena and the offset
// after the last batch. A batch shorter than a header, or with a negative
// lastOffsetDelta, is ErrCorruptSegment.
func ReadExtent(data []byte, first int64, skip []int32, arena []byte, fn func(AssignedBatch) error) ([]byte, int64, error) {
	next := first
	err := DecodeExtent(data, func(ordinal int, batch []byte) error {
		if _, skipped := slices.BinarySearch(skip, int32(ordinal)); skipped {
			return nil
		}
		if len(batch) < BatchHeaderSize {
			return fmt.Errorf("%w: batch %d of %d bytes, shorter than a batch header", ErrCorruptSegment, ordinal, len(batch))
		}
		delta := int32(binary.BigEndian.Uint32(batch[offLastOffsetDelta:]))
		if delta < 0 {
			return fmt.Errorf("%w: batch %d has lastOffsetDelta %d", ErrCorruptSegment, ordinal, delta)
		}
		start := len(arena)
		arena = append(arena, batch...)
		raw := arena[start:len(arena):len(arena)]
		SetBaseOffset(raw, next)
		ab := AssignedBatch{Ordinal: ordinal, Raw: raw, Start: start, Base: next, Last: next + int64(delta)}
		next = ab.Last + 1
		if fn != nil {
			return fn(ab)
		}
		return nil
	})
	return arena, next, err
}
