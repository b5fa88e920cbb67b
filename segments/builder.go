package segments

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
)

// Builder packs RecordBatches of many partitions into one segment object.
//
// Append keeps a reference to each batch's bytes (nothing is copied) until
// Finish or Reset, so the caller must not modify or reuse them before then.
// Finish sorts partitions into extent order, groups each partition's batches
// into chunks, compresses the chunks of uncompressed batches and writes
// footer and trailer. The same appends always produce the same bytes.
//
// A Builder is not safe for concurrent use. It is reusable: Finish and Reset
// both leave it empty, keeping its buffers. Objects are encoded into
// buffers from a pool every Builder shares (see FinishObject).
type Builder struct {
	codec  Codec
	parts  map[PartitionKey]*builderPartition
	order  []*builderPartition // in first-append order; sorted by Finish
	free   []*builderPartition
	rawLen int
	err    error // first invalid Append, returned by Finish

	scratch []byte // concatenated batches of the chunk being compressed

	probe, probeOut []byte // a chunk's first bytes and their compression

	// small is, per topic, what the object's chunks too small to probe
	// have gained from compression so far (smallGain).
	small map[[16]byte]smallGain
	// uncompressedSmall counts the small chunks stored as they are
	// without being compressed, since the builder was made.
	uncompressedSmall int
}

// smallGain is the raw bytes of a topic's small chunks compressed and what
// they were stored in.
type smallGain struct{ raw, stored int64 }

type builderPartition struct {
	key     PartitionKey
	batches [][]byte
	records int64
	rawLen  int64
	minTS   int64
	maxTS   int64
}

// Buffers above this size are dropped rather than kept for the next object,
// so one oversized flush does not pin its memory.
const maxRetainedBuffer = 32 << 20

// NewBuilder returns a Builder that compresses runs of uncompressed batches
// with codec: CodecZstd (the default choice), CodecS2, or CodecNone to store
// everything as is. It panics on any other value, which is a programming
// error.
func NewBuilder(codec Codec) *Builder {
	if !codec.valid() {
		panic(fmt.Sprintf("segments: NewBuilder with unknown codec %v", codec))
	}
	return &Builder{codec: codec, parts: make(map[PartitionKey]*builderPartition)}
}

// Append adds batch to partition p and returns its ordinal: its index among
// p's batches, which is its index in the partition's extent as DecodeExtent
// reports it. Batches of a partition keep the order they were appended in.
//
// The header is read from batch.Raw, not from batch's parsed fields, so edits
// made in place after parsing (SetLogAppendTime) are honoured. batch.Raw must
// be a RecordBatch v2 accepted by ParseBatches; if its framing is not valid,
// Append returns -1 and Finish fails.
func (b *Builder) Append(p PartitionKey, batch Batch) (ordinal int) {
	raw := batch.Raw
	if err := checkFraming(raw); err != nil {
		if b.err == nil {
			b.err = fmt.Errorf("appending a batch to %v: %w", p, err)
		}
		return -1
	}
	part := b.parts[p]
	if part == nil {
		if n := len(b.free); n > 0 {
			part, b.free = b.free[n-1], b.free[:n-1]
		} else {
			part = new(builderPartition)
		}
		part.key = p
		b.parts[p] = part
		b.order = append(b.order, part)
	}
	be := binary.BigEndian
	attrs := be.Uint16(raw[offAttributes:])
	maxTS := int64(be.Uint64(raw[offMaxTimestamp:]))
	minTS := int64(be.Uint64(raw[offBaseTimestamp:]))
	if attrs&attrLogAppendTime != 0 {
		minTS = maxTS
	}
	if len(part.batches) == 0 {
		part.minTS, part.maxTS = minTS, maxTS
	} else {
		part.minTS, part.maxTS = min(part.minTS, minTS), max(part.maxTS, maxTS)
	}
	part.records += int64(int32(be.Uint32(raw[offLastOffsetDelta:]))) + 1 // the offsets it spans
	part.rawLen += int64(len(raw))
	part.batches = append(part.batches, raw)
	b.rawLen += len(raw)
	return len(part.batches) - 1
}

// checkFraming checks what the segment format relies on: that raw is exactly
// one v2 batch with records. The CRC is not rechecked; ParseBatches did.
func checkFraming(raw []byte) error {
	n, err := batchSize(raw)
	if err != nil {
		return err
	}
	if n != len(raw) {
		return fmt.Errorf("%w: batch length %d does not match the %d bytes given",
			ErrInvalidBatch, n-batchLengthOverhead, len(raw))
	}
	if c := int32(binary.BigEndian.Uint32(raw[offRecordCount:])); c <= 0 {
		return fmt.Errorf("%w: record count %d", ErrInvalidBatch, c)
	}
	return nil
}

// Len returns the number of batch bytes appended since the last Finish or
// Reset, before compression; flush thresholds use it.
func (b *Builder) Len() int { return b.rawLen }

// Partitions returns the number of partitions appended to since the last
// Finish or Reset.
func (b *Builder) Partitions() int { return len(b.order) }

// Reset discards everything appended and drops the references to the
// appended batches, keeping buffers for reuse.
func (b *Builder) Reset() {
	for _, p := range b.order {
		clear(p.batches)
		*p = builderPartition{batches: p.batches[:0]}
		b.free = append(b.free, p)
	}
	clear(b.order)
	b.order = b.order[:0]
	clear(b.parts)
	clear(b.small)
	b.rawLen = 0
	b.err = nil
}

// Split cuts what was appended into objects of about target bytes each:
// the partitions, in key order, are divided into runs of about equal raw
// bytes, and each run is moved into a Builder of its own, to be finished
// separately. A partition's batches are never divided, so each partition
// still has one extent, in one of the objects. The runs are as many as
// Len/target, rounded down, and one more when that would leave objects
// above 1.5 × target: each object is at least target bytes when there are
// several, and (unless one partition holds more) at most 1.5 × target,
// so a reader's aligned chunks of target bytes read it in one GET.
//
// Split returns b itself, unchanged, when one object is enough (or an
// Append failed, which its FinishObject reports). Otherwise b is left
// empty, keeping its buffers, and the Builders returned are in key order.
func (b *Builder) Split(target int) []*Builder {
	n := min(objectsFor(b.rawLen, target), len(b.order))
	if n <= 1 || b.err != nil {
		return []*Builder{b}
	}
	b.sortByKey()
	out := make([]*Builder, 0, n)
	var cur *Builder
	run, total, before := -1, int64(b.rawLen), int64(0)
	for _, p := range b.order {
		// A partition goes to the run its middle byte falls in.
		k := int((before + p.rawLen/2) * int64(n) / total)
		before += p.rawLen
		if k != run {
			run = k
			cur = &Builder{codec: b.codec, parts: map[PartitionKey]*builderPartition{}}
			out = append(out, cur)
		}
		cur.parts[p.key] = p
		cur.order = append(cur.order, p)
		cur.rawLen += int(p.rawLen)
	}
	clear(b.order)
	b.order = b.order[:0]
	clear(b.parts)
	clear(b.small)
	b.rawLen = 0
	return out
}

// sortByKey puts the partitions in extent order.
func (b *Builder) sortByKey() {
	slices.SortFunc(b.order, func(x, y *builderPartition) int { return x.key.Compare(y.key) })
}

// objectsFor is the number of objects Split cuts raw bytes into.
func objectsFor(raw, target int) int {
	if target <= 0 {
		return 1
	}
	n := max(raw/target, 1)
	if 2*raw > 3*n*target {
		n++
	}
	return n
}

// Finish encodes the object and returns it with its extents, in object
// order. The object is a new slice owned by the caller. Finish resets the
// Builder, whether it succeeds or not.
func (b *Builder) Finish() (object []byte, extents []Extent, err error) {
	obj, extents, err := b.FinishObject()
	if err != nil {
		return nil, nil, err
	}
	defer obj.Release()
	return bytes.Clone(obj.Bytes), extents, nil
}

// Object is an encoded segment object in a buffer from a pool shared by
// every Builder.
type Object struct {
	// Bytes is the object. It is valid until Release.
	Bytes []byte
	bufp  *[]byte
}

// Release returns the object's buffer to the pool; Bytes must not be used
// afterwards. Releasing twice, or a zero Object, does nothing.
func (o *Object) Release() {
	if o.bufp == nil {
		return
	}
	if cap(o.Bytes) <= maxRetainedBuffer {
		*o.bufp = o.Bytes[:0]
		objectBufs.Put(o.bufp)
	}
	o.Bytes, o.bufp = nil, nil
}

// FinishObject is Finish without the copy: the object stays in the
// pooled buffer it was encoded into, for the caller to Release once done
// with it (an agent, after its PUT), so a steady stream of flushes reuses
// a few buffers instead of allocating one per object.
func (b *Builder) FinishObject() (Object, []Extent, error) {
	defer b.Reset()
	if b.err != nil {
		return Object{}, nil, b.err
	}
	b.sortByKey()

	// The object is encoded into a pooled buffer of its largest possible
	// size. Growing a buffer chunk by chunk instead (each Builder of an
	// agent encodes one object) moved every byte about six times.
	bufp := objectBufs.Get().(*[]byte)
	out := *bufp
	if need := b.maxObjectSize(); cap(out) < need {
		out = make([]byte, 0, need)
	}
	out = appendHeader(out[:0])
	extents := make([]Extent, 0, len(b.order))
	for _, p := range b.order {
		start := len(out)
		var err error
		if out, err = b.appendExtent(out, p); err != nil {
			return Object{}, nil, fmt.Errorf("encoding extent of %v: %w", p.key, err)
		}
		extents = append(extents, Extent{
			Key:          p.key,
			Offset:       int64(start),
			Length:       int64(len(out) - start),
			Batches:      int32(len(p.batches)),
			Records:      p.records,
			MinTimestamp: p.minTS,
			MaxTimestamp: p.maxTS,
			RawBytes:     p.rawLen,
		})
	}
	footerOffset := len(out)
	out = appendFooter(out, extents)
	out = appendTrailer(out, int64(footerOffset), int64(len(out)-footerOffset))
	return Object{Bytes: out, bufp: bufp}, extents, nil
}

// objectBufs holds buffers Finish encodes objects into.
var objectBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxObjectSize bounds the size of the object Finish will encode: every
// batch stored as is (a chunk that does not compress is), plus the most a
// compressed chunk can take before it is found not to shrink (zstd's and
// s2's worst case), chunk headers, footer and trailer.
func (b *Builder) maxObjectSize() int {
	chunks := 0 // a chunk holds at least one batch
	for _, p := range b.order {
		chunks += len(p.batches)
	}
	largest := min(b.rawLen, ChunkTargetRawSize)
	slack := max(s2.MaxEncodedLen(largest), largest+largest/128+(64<<10)) - largest
	return HeaderSize + b.rawLen + chunks*ChunkHeaderSize + slack +
		footerFixedSize + len(b.order)*FooterEntrySize + TrailerSize
}

// Large chunks are probed before they are compressed. Their first
// probeBytes are looked at: bytes spread almost evenly over all 256 values
// (more than probeEntropy bits of entropy per byte) are then compressed
// alone, and a chunk whose probe does not shrink by probeGain is stored as
// is. Random or encrypted values then cost a 64 KiB compression instead of
// a whole chunk's (floe bench's produce profile, random payload: a quarter
// of the agent's CPU was zstd finding nothing to compress), and other data
// only a byte count of 64 KiB. Data that compresses only across more than
// probeBytes is rare; it loses its compression.
//
// Chunks too small to probe (a flush over thousands of partitions holds a
// chunk of a few KiB per partition) are compressed until a topic's have
// added up to probeMinRaw in the object; if they did not shrink by
// probeGain, the topic's other small chunks in the object are stored as
// they are. (At 4096 partitions with random values, compressing them for
// nothing was a quarter of the agent's produce CPU.) Chunks are encoded in
// key order, so this too gives the same bytes for the same appends.
const (
	probeMinRaw  = 256 << 10
	probeBytes   = 64 << 10
	probeEntropy = 7.5  // bits per byte
	probeGain    = 0.97 // compressed / raw below this counts as compressible
)

// compressible reports whether the first probeBytes of batches compress
// with codec.
func (b *Builder) compressible(codec Codec, batches [][]byte) bool {
	sample := b.probe[:0]
	for _, batch := range batches {
		sample = append(sample, batch[:min(len(batch), probeBytes-len(sample))]...)
		if len(sample) == probeBytes {
			break
		}
	}
	b.probe = sample
	if entropy(sample) < probeEntropy {
		return true
	}
	var n int
	switch codec {
	case CodecZstd:
		enc, _, err := zstdCodecs()
		if err != nil {
			return true // the real compression reports it
		}
		b.probeOut = enc.EncodeAll(sample, b.probeOut[:0])
		n = len(b.probeOut)
	case CodecS2:
		b.probeOut = slices.Grow(b.probeOut[:0], s2.MaxEncodedLen(len(sample)))
		n = len(s2.Encode(b.probeOut[:cap(b.probeOut)], sample))
	default:
		return true
	}
	return float64(n) < probeGain*float64(len(sample))
}

// entropy is the Shannon entropy of p's bytes, in bits per byte.
func entropy(p []byte) float64 {
	var counts [256]int
	for _, c := range p {
		counts[c]++
	}
	h, n := 0.0, float64(len(p))
	for _, c := range counts {
		if c > 0 {
			f := float64(c) / n
			h -= f * math.Log2(f)
		}
	}
	return h
}

// chunkCodec returns the codec for a chunk holding raw.
func (b *Builder) chunkCodec(raw []byte) Codec {
	if b.codec == CodecNone || raw[offAttributes+1]&attrCompressionMask != 0 || len(raw) > MaxChunkRawSize {
		return CodecNone // never recompress what the client compressed
	}
	return b.codec
}

// appendExtent appends the chunks of p to out. Consecutive batches that need
// the same codec share a chunk while it stays within ChunkTargetRawSize.
func (b *Builder) appendExtent(out []byte, p *builderPartition) ([]byte, error) {
	batches := p.batches
	ordinal := 0
	for len(batches) > 0 {
		codec := b.chunkCodec(batches[0])
		n, raw := 1, len(batches[0])
		for n < len(batches) && raw+len(batches[n]) <= ChunkTargetRawSize && b.chunkCodec(batches[n]) == codec {
			raw += len(batches[n])
			n++
		}
		var err error
		out, err = b.appendChunk(out, p.key.TopicID, codec, batches[:n], raw, ordinal, n == len(batches))
		if err != nil {
			return nil, err
		}
		ordinal += n
		batches = batches[n:]
	}
	return out, nil
}

// appendChunk appends one chunk of topic holding batches (raw bytes in
// total).
func (b *Builder) appendChunk(out []byte, topic [16]byte, codec Codec, batches [][]byte, raw, firstOrdinal int, last bool) ([]byte, error) {
	at := len(out)
	out = append(out, make([]byte, ChunkHeaderSize)...)
	body := len(out)
	small := raw < probeMinRaw
	if codec != CodecNone {
		if small {
			if g := b.small[topic]; g.raw >= probeMinRaw && float64(g.stored) >= probeGain*float64(g.raw) {
				codec = CodecNone
				b.uncompressedSmall++
			}
		} else if !b.compressible(codec, batches) {
			codec = CodecNone
		}
	}
	if codec != CodecNone {
		src := batches[0]
		if len(batches) > 1 {
			b.scratch = b.scratch[:0]
			for _, batch := range batches {
				b.scratch = append(b.scratch, batch...)
			}
			src = b.scratch
		}
		switch codec {
		case CodecZstd:
			enc, _, err := zstdCodecs()
			if err != nil {
				return nil, err
			}
			out = enc.EncodeAll(src, out)
		case CodecS2:
			out = slices.Grow(out, s2.MaxEncodedLen(len(src)))
			enc := s2.Encode(out[body:cap(out)], src)
			out = append(out[:body], enc...) // enc is out[body:] already: only the length changes
		}
		stored := len(out) - body
		if stored >= raw {
			// Incompressible: store as is, which also decodes faster.
			out, codec = out[:body], CodecNone
		}
		if small {
			if b.small == nil {
				b.small = map[[16]byte]smallGain{}
			}
			g := b.small[topic]
			g.raw += int64(raw)
			g.stored += int64(min(stored, raw))
			b.small[topic] = g
		}
		if cap(b.scratch) > maxRetainedBuffer {
			b.scratch = nil
		}
	}
	if codec == CodecNone {
		for _, batch := range batches {
			out = append(out, batch...)
		}
	}
	h := chunkHeader{
		codec:        codec,
		storedLen:    uint32(len(out) - body),
		rawLen:       uint32(raw),
		batchCount:   uint32(len(batches)),
		firstOrdinal: uint32(firstOrdinal),
	}
	if last {
		h.flags |= chunkFlagLast
	}
	putChunkHeader(out[at:], h, out[body:])
	return out, nil
}
