package segments

import (
	"encoding/binary"
	"fmt"
)

// Transaction markers: control batches.
//
// A transaction's coordinator ends it on each of its partitions with a
// control batch (attributes transactional and control) of one record,
// whose key is the control record's version (int16, 0) and type (int16:
// 0 abort, 1 commit) and whose value is the marker's version (int16, 0)
// and the coordinator's epoch (int32), all big-endian, as Kafka writes
// them. The batch carries the transaction's producer ID and epoch and no
// sequence (-1).

// Control record types.
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// AppendControlBatch appends a transaction marker for producer id at epoch
// to dst: a commit marker when commit is set, else an abort marker.
func AppendControlBatch(dst []byte, producerID int64, epoch int16, commit bool, coordinatorEpoch int32, timestamp int64) []byte {
	typ := ControlAbort
	if commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	value := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(coordinatorEpoch))
	records := AppendRecord(nil, 0, 0, key, value)
	return AppendBatch(dst, BatchHeader{
		Attributes:    attrTransactional | attrControl,
		BaseTimestamp: timestamp, MaxTimestamp: timestamp,
		ProducerID: producerID, ProducerEpoch: epoch, BaseSequence: -1,
		LastOffsetDelta: 0, RecordCount: 1,
	}, records)
}

// ControlType returns the type of a control batch's record (ControlAbort,
// ControlCommit, or another a newer Kafka defines). b must be a control
// batch ParseBatch accepted.
func (b *Batch) ControlType() (int16, error) {
	if !b.Control() {
		return 0, fmt.Errorf("%w: not a control batch", ErrInvalidBatch)
	}
	if b.RecordCount != 1 || b.IsCompressed() || len(b.Raw) < BatchHeaderSize {
		return 0, fmt.Errorf("%w: a control batch holds one uncompressed record; this one %d records (%v)", ErrInvalidBatch, b.RecordCount, b.Compression())
	}
	r, err := readRecord(b.Raw[BatchHeaderSize:])
	if err != nil {
		return 0, err
	}
	if len(r.Key) < 4 {
		return 0, fmt.Errorf("%w: control record key of %d bytes", ErrInvalidBatch, len(r.Key))
	}
	key := r.Key
	return int16(binary.BigEndian.Uint16(key[2:4])), nil
}
