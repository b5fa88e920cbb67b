package segments

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The segment object format. FORMAT.md beside this file is the
// specification; the constants here are the single source of truth for the
// numbers it quotes, and testdata/v1-*.seg freezes the bytes.
//
// Every multi-byte integer in the segment format is little-endian. (The Kafka
// RecordBatches stored inside chunks keep their own big-endian layout.)

// Magic opens and closes every segment object.
var Magic = [8]byte{'F', 'L', 'O', 'E', 'S', 'E', 'G', 0}

// Format versions.
const (
	// FormatVersion is the version this package writes.
	FormatVersion uint16 = 1

	// MinReadVersion and MaxReadVersion bound the versions this package
	// reads. Anything outside is ErrUnsupportedVersion.
	MinReadVersion uint16 = 1
	MaxReadVersion uint16 = 1
)

// Sizes of the fixed structures of version 1.
const (
	// HeaderSize is the size of the object header; the first extent
	// starts right after it.
	HeaderSize = 16

	// TrailerSize is the size of the trailer at the very end of an object.
	// Reading the last TrailerSize bytes is enough to locate the footer.
	TrailerSize = 32

	// ChunkHeaderSize is the size of the header in front of every chunk.
	ChunkHeaderSize = 24

	// FooterEntrySize is the size of one extent entry in the footer.
	FooterEntrySize = 72

	// footerFixedSize is the footer's size without entries: version,
	// flags, count and CRC.
	footerFixedSize = 12
)

// Limits.
const (
	// ChunkTargetRawSize is the raw size the builder keeps chunks under:
	// a chunk is closed before a batch would take it over this. A single
	// batch larger than this gets a chunk of its own.
	ChunkTargetRawSize = 4 << 20

	// MaxChunkRawSize is the largest raw size of a compressed chunk, and so
	// the most memory decoding one chunk takes. Readers reject compressed
	// chunks declaring more; the builder stores a batch larger than this
	// uncompressed.
	MaxChunkRawSize = 64 << 20

	// MaxFooterSize bounds the footer length a reader accepts from a
	// trailer before allocating for it (about 930k extents).
	MaxFooterSize = 64 << 20

	// MaxObjectSize bounds offsets and lengths a reader accepts (1 TiB),
	// far above any object floe writes; it keeps arithmetic on corrupt
	// values from overflowing.
	MaxObjectSize = 1 << 40
)

// Chunk flag bits.
const (
	// chunkFlagLast marks the final chunk of an extent, so that a
	// truncated ranged read is detected even at a chunk boundary.
	chunkFlagLast = 0x01
)

// Codec is the compression of a chunk in a segment object. It is unrelated
// to the codec a Kafka client used inside a batch (BatchCompression).
type Codec uint8

// Chunk codecs.
const (
	// CodecNone stores batches as they are. Used for batches the client
	// already compressed, for a Builder created with CodecNone, and when
	// compressing would not make a chunk smaller (or, for a large chunk,
	// its first 64 KiB; see Builder.compressible).
	CodecNone Codec = 0
	// CodecZstd is one zstd frame holding the chunk's batches.
	CodecZstd Codec = 1
	// CodecS2 is one S2 block (github.com/klauspost/compress/s2, block
	// format) holding the chunk's batches.
	CodecS2 Codec = 2
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	case CodecS2:
		return "s2"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

func (c Codec) valid() bool { return c <= CodecS2 }

// ParseCodec returns the codec a setting names: zstd, s2 or none.
func ParseCodec(name string) (Codec, error) {
	for _, c := range []Codec{CodecZstd, CodecS2, CodecNone} {
		if name == c.String() {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q: use zstd, s2 or none", name)
}

// Set parses name into c (ParseCodec), so a *Codec is a command-line flag
// value.
func (c *Codec) Set(name string) error {
	v, err := ParseCodec(name)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Type names a Codec's values in command-line help.
func (c *Codec) Type() string { return "codec" }

// PartitionKey identifies a partition: the topic's UUID and the partition
// number.
type PartitionKey struct {
	TopicID   [16]byte
	Partition int32
}

// Compare orders keys by topic ID bytes, then partition; it is the order of
// extents in an object.
func (k PartitionKey) Compare(o PartitionKey) int {
	if c := bytes.Compare(k.TopicID[:], o.TopicID[:]); c != 0 {
		return c
	}
	switch {
	case k.Partition < o.Partition:
		return -1
	case k.Partition > o.Partition:
		return 1
	}
	return 0
}

func (k PartitionKey) String() string {
	return fmt.Sprintf("%x/%d", k.TopicID, k.Partition)
}

// Extent describes the bytes of one partition in a segment object: a run of
// adjacent chunks that one ranged GET of [Offset, Offset+Length) returns.
type Extent struct {
	Key PartitionKey
	// Offset and Length locate the extent in the object.
	Offset, Length int64
	// Batches is the number of RecordBatches, Records the number of
	// offsets they span (the sum of lastOffsetDelta+1: their records,
	// unless a batch was compacted). Offsets are assigned at commit: the
	// extent takes Records consecutive offsets.
	Batches int32
	Records int64
	// MinTimestamp and MaxTimestamp bound the record timestamps, from the
	// batch headers (baseTimestamp and maxTimestamp; for LogAppendTime
	// batches maxTimestamp for both).
	MinTimestamp, MaxTimestamp int64
	// RawBytes is the size of the batches uncompressed by the segment
	// format (client compression remains).
	RawBytes int64
}

// End returns the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Header is the decoded object header.
type Header struct {
	Version uint16
	Flags   uint16
}

// --- header -------------------------------------------------------------

// Header layout (HeaderSize bytes):
//
//	0  magic   [8]byte
//	8  version uint16
//	10 flags   uint16 (none defined; 0)
//	12 crc     uint32 CRC-32C of bytes [0, 12)
func appendHeader(dst []byte) []byte {
	var h [HeaderSize]byte
	copy(h[:8], Magic[:])
	le.PutUint16(h[8:], FormatVersion)
	le.PutUint16(h[10:], 0)
	le.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	return append(dst, h[:]...)
}

func decodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header: %d bytes, need %d", ErrCorruptSegment, len(b), HeaderSize)
	}
	b = b[:HeaderSize]
	if !bytes.Equal(b[:8], Magic[:]) {
		return Header{}, fmt.Errorf("%w: header: bad magic %q, not a segment object", ErrCorruptSegment, b[:8])
	}
	h := Header{Version: le.Uint16(b[8:]), Flags: le.Uint16(b[10:])}
	if err := checkVersion("header", h.Version); err != nil {
		return Header{}, err
	}
	if got, want := crc32.Checksum(b[:12], castagnoli), le.Uint32(b[12:]); got != want {
		return Header{}, fmt.Errorf("%w: header: CRC %08x, stored %08x", ErrCorruptSegment, got, want)
	}
	if h.Flags != 0 {
		return Header{}, fmt.Errorf("%w: header: unknown flags %#04x", ErrCorruptSegment, h.Flags)
	}
	return h, nil
}

func checkVersion(what string, v uint16) error {
	if v < MinReadVersion || v > MaxReadVersion {
		return fmt.Errorf("%w: %s: version %d, this reader accepts %d to %d",
			ErrUnsupportedVersion, what, v, MinReadVersion, MaxReadVersion)
	}
	return nil
}

// --- chunk header -------------------------------------------------------

// Chunk header layout (ChunkHeaderSize bytes), followed by storedLen bytes:
//
//	0  crc          uint32 CRC-32C of header bytes [4, 24) then the stored bytes
//	4  version      uint16
//	6  codec        uint8
//	7  flags        uint8  (bit 0: last chunk of the extent)
//	8  storedLen    uint32
//	12 rawLen       uint32
//	16 batchCount   uint32
//	20 firstOrdinal uint32 ordinal of the chunk's first batch in the extent
type chunkHeader struct {
	codec        Codec
	flags        uint8
	storedLen    uint32
	rawLen       uint32
	batchCount   uint32
	firstOrdinal uint32
}

// putChunkHeader writes h into dst[:ChunkHeaderSize] and the CRC over it and
// stored.
func putChunkHeader(dst []byte, h chunkHeader, stored []byte) {
	_ = dst[ChunkHeaderSize-1]
	le.PutUint16(dst[4:], FormatVersion)
	dst[6] = byte(h.codec)
	dst[7] = h.flags
	le.PutUint32(dst[8:], h.storedLen)
	le.PutUint32(dst[12:], h.rawLen)
	le.PutUint32(dst[16:], h.batchCount)
	le.PutUint32(dst[20:], h.firstOrdinal)
	crc := crc32.Update(0, castagnoli, dst[4:ChunkHeaderSize])
	crc = crc32.Update(crc, castagnoli, stored)
	le.PutUint32(dst[0:], crc)
}

// --- footer -------------------------------------------------------------

// Footer layout (footerFixedSize + n*FooterEntrySize bytes):
//
//	0     version uint16
//	2     flags   uint16 (none defined; 0)
//	4     count   uint32 number of extents n
//	8     n entries of FooterEntrySize bytes, in extent order
//	8+72n crc     uint32 CRC-32C of bytes [0, 8+72n)
//
// Entry layout:
//
//	0  topicID      [16]byte
//	16 partition    int32
//	20 batches      uint32
//	24 offset       uint64
//	32 length       uint64
//	40 records      uint64
//	48 minTimestamp int64
//	56 maxTimestamp int64
//	64 rawBytes     uint64
func appendFooter(dst []byte, extents []Extent) []byte {
	start := len(dst)
	dst = le.AppendUint16(dst, FormatVersion)
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint32(dst, uint32(len(extents)))
	for i := range extents {
		e := &extents[i]
		dst = append(dst, e.Key.TopicID[:]...)
		dst = le.AppendUint32(dst, uint32(e.Key.Partition))
		dst = le.AppendUint32(dst, uint32(e.Batches))
		dst = le.AppendUint64(dst, uint64(e.Offset))
		dst = le.AppendUint64(dst, uint64(e.Length))
		dst = le.AppendUint64(dst, uint64(e.Records))
		dst = le.AppendUint64(dst, uint64(e.MinTimestamp))
		dst = le.AppendUint64(dst, uint64(e.MaxTimestamp))
		dst = le.AppendUint64(dst, uint64(e.RawBytes))
	}
	return le.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeFooter decodes and verifies a footer: its CRC, its version, and that
// its extents are in strictly increasing key order and tile the object's
// data region from HeaderSize without gaps or overlaps. It does not know
// where the data region ends; DecodeObject and ReadFooter check that too.
func DecodeFooter(footer []byte) ([]Extent, error) {
	if len(footer) < footerFixedSize {
		return nil, fmt.Errorf("%w: footer: %d bytes, need at least %d", ErrCorruptSegment, len(footer), footerFixedSize)
	}
	if err := checkVersion("footer", le.Uint16(footer)); err != nil {
		return nil, err
	}
	body := footer[:len(footer)-4]
	if got, want := crc32.Checksum(body, castagnoli), le.Uint32(footer[len(body):]); got != want {
		return nil, fmt.Errorf("%w: footer: CRC %08x, stored %08x", ErrCorruptSegment, got, want)
	}
	if flags := le.Uint16(footer[2:]); flags != 0 {
		return nil, fmt.Errorf("%w: footer: unknown flags %#04x", ErrCorruptSegment, flags)
	}
	n := le.Uint32(footer[4:])
	if want := uint64(footerFixedSize) + uint64(n)*FooterEntrySize; want != uint64(len(footer)) {
		return nil, fmt.Errorf("%w: footer: %d extents need %d bytes, footer has %d",
			ErrCorruptSegment, n, want, len(footer))
	}
	extents := make([]Extent, n)
	next := int64(HeaderSize)
	for i := range extents {
		b := footer[8+i*FooterEntrySize:][:FooterEntrySize]
		e := &extents[i]
		copy(e.Key.TopicID[:], b[:16])
		e.Key.Partition = int32(le.Uint32(b[16:]))
		e.Batches = int32(le.Uint32(b[20:]))
		e.Offset = int64(le.Uint64(b[24:]))
		e.Length = int64(le.Uint64(b[32:]))
		e.Records = int64(le.Uint64(b[40:]))
		e.MinTimestamp = int64(le.Uint64(b[48:]))
		e.MaxTimestamp = int64(le.Uint64(b[56:]))
		e.RawBytes = int64(le.Uint64(b[64:]))
		if msg := checkExtent(e, next); msg != "" {
			return nil, fmt.Errorf("%w: footer: extent %d (%v): %s", ErrCorruptSegment, i, e.Key, msg)
		}
		if i > 0 && extents[i-1].Key.Compare(e.Key) >= 0 {
			return nil, fmt.Errorf("%w: footer: extent %d (%v) not after extent %d (%v)",
				ErrCorruptSegment, i, e.Key, i-1, extents[i-1].Key)
		}
		next = e.End()
	}
	return extents, nil
}

// checkExtent checks the fields of one decoded footer entry, which must
// start at offset want, and describes the first problem ("" if none).
func checkExtent(e *Extent, want int64) string {
	const minExtent = ChunkHeaderSize + 1 // a compressed batch can be tiny
	switch {
	case e.Offset != want:
		return fmt.Sprintf("offset %d, expected %d", e.Offset, want)
	case e.Length < minExtent || e.Length > MaxObjectSize:
		return fmt.Sprintf("length %d out of range", e.Length)
	case e.Batches <= 0:
		return fmt.Sprintf("batch count %d", e.Batches)
	case e.Records < int64(e.Batches):
		return fmt.Sprintf("%d records in %d batches", e.Records, e.Batches)
	case e.RawBytes < int64(e.Batches)*BatchHeaderSize:
		return fmt.Sprintf("%d raw bytes in %d batches", e.RawBytes, e.Batches)
	}
	return ""
}

// --- trailer ------------------------------------------------------------

// Trailer layout (TrailerSize bytes, the last bytes of the object):
//
//	0  footerOffset uint64
//	8  footerLength uint64
//	16 crc          uint32 CRC-32C of bytes [0, 16) then [20, 32)
//	20 flags        uint16 (none defined; 0)
//	22 version      uint16
//	24 magic        [8]byte
func appendTrailer(dst []byte, footerOffset, footerLength int64) []byte {
	var t [TrailerSize]byte
	le.PutUint64(t[0:], uint64(footerOffset))
	le.PutUint64(t[8:], uint64(footerLength))
	le.PutUint16(t[20:], 0)
	le.PutUint16(t[22:], FormatVersion)
	copy(t[24:], Magic[:])
	le.PutUint32(t[16:], trailerCRC(&t))
	return append(dst, t[:]...)
}

func trailerCRC(t *[TrailerSize]byte) uint32 {
	crc := crc32.Update(0, castagnoli, t[0:16])
	return crc32.Update(crc, castagnoli, t[20:])
}

// DecodeTrailer decodes the trailer in the last TrailerSize bytes of tail
// (tail may hold more of the object before them) and returns where the
// footer is. It checks the magic, version and CRC, and that the footer
// location is plausible; callers that know the object size also check that
// footerOffset+footerLength+TrailerSize equals it.
func DecodeTrailer(tail []byte) (footerOffset, footerLength int64, err error) {
	if len(tail) < TrailerSize {
		return 0, 0, fmt.Errorf("%w: trailer: %d bytes, need %d", ErrCorruptSegment, len(tail), TrailerSize)
	}
	var t [TrailerSize]byte
	copy(t[:], tail[len(tail)-TrailerSize:])
	if !bytes.Equal(t[24:], Magic[:]) {
		return 0, 0, fmt.Errorf("%w: trailer: bad magic %q, not a segment object", ErrCorruptSegment, t[24:])
	}
	if err := checkVersion("trailer", le.Uint16(t[22:])); err != nil {
		return 0, 0, err
	}
	if got, want := trailerCRC(&t), le.Uint32(t[16:]); got != want {
		return 0, 0, fmt.Errorf("%w: trailer: CRC %08x, stored %08x", ErrCorruptSegment, got, want)
	}
	if flags := le.Uint16(t[20:]); flags != 0 {
		return 0, 0, fmt.Errorf("%w: trailer: unknown flags %#04x", ErrCorruptSegment, flags)
	}
	off, n := le.Uint64(t[0:]), le.Uint64(t[8:])
	if off < HeaderSize || off > MaxObjectSize || n < footerFixedSize || n > MaxFooterSize {
		return 0, 0, fmt.Errorf("%w: trailer: footer at %d length %d out of range", ErrCorruptSegment, off, n)
	}
	return int64(off), int64(n), nil
}

// --- compression --------------------------------------------------------

var le = binary.LittleEndian

// zstdLevel is the level chunks are compressed with. The level is not part
// of the format; any zstd frame decodes. See FORMAT.md for the choice.
const zstdLevel = zstd.SpeedFastest

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// zstdCodecs returns the process-wide zstd encoder and decoder. Their
// EncodeAll and DecodeAll are safe for concurrent use and keep pools of
// GOMAXPROCS states, so creating them once is both cheaper and bounded.
func zstdCodecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstdLevel),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(true),
			// Always write the content size, which readers check
			// before allocating (small frames omit it otherwise).
			zstd.WithSingleSegment(true),
		)
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0), // GOMAXPROCS
			zstd.WithDecoderMaxMemory(MaxChunkRawSize),
			zstd.WithDecodeAllCapLimit(true),
		)
		if zstdErr != nil {
			zstdErr = fmt.Errorf("creating zstd decoder: %w", zstdErr)
		}
	})
	return zstdEnc, zstdDec, zstdErr
}
