package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"
	"github.com/google/uuid"
)

// Compacting a table's small files.
//
// Every commit writes at least one Parquet file per table partition it
// touches, so a table committed every minute gains over a thousand files
// a day. Every compactEvery the exporter plans a rewrite of each table's
// files smaller than three quarters of the target size (at least
// compactMinFiles of them in a table partition) into files of about the
// target size (iceberg-go's bin-packing), and commits it as one rewrite
// snapshot. The snapshot carries the offsets of the one it replaces
// (floe.offsets), so the export resumes from it as from an append.

const (
	// compactEvery is how often a table's files are looked at.
	compactEvery = 10 * time.Minute
	// compactMinFiles is the fewest small files of a table partition
	// worth a rewrite.
	compactMinFiles = 5
)

// CompactStats are what a table compaction did.
type CompactStats struct {
	Groups, FilesRemoved, FilesAdded int
}

// compactTable rewrites tbl's small files of topic, when there are enough
// of them. It returns the table after the rewrite (tbl when there was
// nothing to do).
func (e *Exporter) compactTable(ctx context.Context, tbl *table.Table, topic uuid.UUID, minFiles int) (*table.Table, CompactStats, error) {
	var st CompactStats
	target := e.cfg.TargetFileBytes
	cfg := compaction.DefaultConfig()
	cfg.TargetFileSizeBytes = target
	cfg.MinFileSizeBytes = target * 3 / 4
	cfg.MaxFileSizeBytes = target * 9 / 5
	cfg.MinInputFiles = uint(minFiles)
	plan, err := compaction.Analyze(ctx, tbl, cfg)
	if err != nil {
		return tbl, st, fmt.Errorf("planning the compaction: %w", err)
	}
	if len(plan.Groups) == 0 {
		return tbl, st, nil
	}
	offsets, err := resumeOffsets(tbl, topic)
	if err != nil {
		return tbl, st, err
	}
	byPart := make(map[string]int64, len(offsets))
	for p, o := range offsets {
		byPart[strconv.Itoa(int(p))] = o
	}
	offJSON, _ := json.Marshal(byPart)
	groups := make([]table.CompactionTaskGroup, len(plan.Groups))
	for i, g := range plan.Groups {
		groups[i] = table.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes}
	}
	txn := tbl.NewTransaction()
	res, err := txn.RewriteDataFiles(ctx, groups, table.RewriteDataFilesOptions{
		SnapshotProps: iceberg.Properties{propOffsets: string(offJSON), propTopicID: topic.String()},
	})
	if err != nil {
		return tbl, st, fmt.Errorf("rewriting %d groups of small files: %w", len(groups), err)
	}
	compacted, err := txn.Commit(ctx)
	if err != nil {
		return tbl, st, fmt.Errorf("committing the compaction: %w", err)
	}
	st = CompactStats{Groups: res.RewrittenGroups, FilesRemoved: res.RemovedDataFiles, FilesAdded: res.AddedDataFiles}
	return compacted, st, nil
}
