package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/kafkaopt"
	"github.com/floe-io/floe/internal/units"
)

func newProduceCmd() *cobra.Command {
	var (
		cf              clientFlags
		keySep          string
		acks            string
		partition       int32
		compression     string
		headers         []string
		deliveryTimeout time.Duration
		quiet           bool
		output          string
	)
	cmd := clientCommand(&cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce lines from standard input as records",
		Long: `Read lines from standard input and produce each as one record to TOPIC.
With --key-separator, the text before the first separator is the key and
the rest the value; a line without the separator has no key. Records with
a key go to the partition Kafka's default partitioner picks for the key
(murmur2, as the Java client), records without one are spread out;
--partition sends every record to one partition. Empty lines are produced
as empty values. Topics are auto-created where the cluster allows it
(floe dev does).

At the end it prints a summary on stderr (-q: none; -o json: a JSON
summary on stdout) and exits 1 if any record was not produced, or if it
was interrupted before the end of the input. Records still buffered when
interrupted are not sent.

JSON summary: {"topic", "lines", "produced", "failed", "bytes",
"duration_ms", "unkeyed", "partitions": [{"partition", "records",
"first_offset", "last_offset"}], "error"}; "unkeyed" counts lines without
the key separator, "error" is the first failure (only when one failed).
With --acks 0 nothing answers, so offsets are -1 and "produced" counts
records sent.`,
		Example: `  printf 'k1:hello\nk2:world\n' | floe produce demo --key-separator :
  seq 1 100000 | floe produce numbers --acks 1 --compression zstd
  floe produce demo -H source=cli < events.txt`,
		Args: argsRange(1, 1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			var opts []kgo.Opt
			switch acks {
			case "all", "-1":
				opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
			case "1":
				opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
			case "0":
				opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
			default:
				return usageError(cmd, "--acks %q: use all, 1 or 0", acks)
			}
			codec, err := kafkaopt.Compression(compression)
			if err != nil {
				return usageError(cmd, "--%v", err)
			}
			opts = append(opts, kgo.ProducerBatchCompression(codec), kgo.AllowAutoTopicCreation())
			if deliveryTimeout > 0 {
				opts = append(opts, kgo.RecordDeliveryTimeout(deliveryTimeout))
			}
			if partition < -1 {
				return usageError(cmd, "--partition %d: use a partition number, or -1 for the partitioner", partition)
			}
			if partition >= 0 {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			var hdrs []kgo.RecordHeader
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok || k == "" {
					return usageError(cmd, "-H/--header %q: use key=value", h)
				}
				hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}

			ctx := cmd.Context()
			cl, err := cf.client(ctx, opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := checkProduceTopic(ctx, cl, topic, partition); err != nil {
				return err
			}

			p := &producer{topic: topic, partitions: map[int32]*partitionStats{}, start: time.Now(), noAck: acks == "0"}
			p.progress = newProgress(cmd, "produced", 0)
			readErr := p.run(ctx, cl, cmd.InOrStdin(), []byte(keySep), partition, hdrs)
			p.progress.finish()
			sum := p.summary()
			switch {
			case out == outputJSON:
				if err := writeJSON(cmd.OutOrStdout(), sum); err != nil {
					return err
				}
			case !quiet:
				p.printSummary(cmd.ErrOrStderr(), sum, keySep)
			}
			switch {
			case readErr != nil && interrupted(ctx, readErr):
				return fmt.Errorf("interrupted after %d lines: %d produced, %d not", sum.Lines, sum.Produced, sum.Failed)
			case readErr != nil:
				return fmt.Errorf("reading standard input: %w", readErr)
			case sum.Failed > 0:
				return fmt.Errorf("%d of %d records to %s were not produced; first error: %v", sum.Failed, sum.Lines, topic, explain(fmt.Sprintf("topic %q", topic), p.firstErr, ""))
			}
			return nil
		},
	})
	fs := cmd.Flags()
	cf.register(fs)
	fs.StringVarP(&keySep, "key-separator", "K", "", "split each line at the first SEP into key and value")
	fs.StringVar(&acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0 (0 gets no answer; 1 and 0 turn off idempotence)")
	fs.Int32VarP(&partition, "partition", "p", -1, "produce every record to this partition (-1: by key)")
	fs.StringVarP(&compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.StringArrayVarP(&headers, "header", "H", nil, "add a header key=value to every record (repeatable)")
	fs.DurationVar(&deliveryTimeout, "delivery-timeout", time.Minute, "fail a record not acknowledged within this long (delivery.timeout.ms); 0 waits forever")
	fs.BoolVarP(&quiet, "quiet", "q", false, "print no summary")
	fs.StringVarP(&output, "output", "o", "text", "summary format: text (on stderr) or json (on stdout)")
	return cmd
}

// checkProduceTopic fails fast, before reading any input, when the topic
// does not exist and cannot be auto-created, or has no such partition.
func checkProduceTopic(ctx context.Context, cl *kgo.Client, topic string, partition int32) error {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return explain(fmt.Sprintf("topic %q", topic), err, "")
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		err := kerr.ErrorForCode(t.ErrorCode)
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("topic %q does not exist and the cluster does not create topics on first use: create it with `floe topic create %s`", topic, topic)
		case errors.Is(err, kerr.LeaderNotAvailable):
			return nil // just auto-created; the producer waits for it
		case err != nil:
			return explain(fmt.Sprintf("topic %q", topic), err, "")
		}
		if partition >= int32(len(t.Partitions)) {
			return fmt.Errorf("topic %q has %d partitions (0 to %d): --partition %d does not exist", topic, len(t.Partitions), len(t.Partitions)-1, partition)
		}
	}
	return nil
}

// producer produces lines and keeps the counts of what happened.
type producer struct {
	topic    string
	start    time.Time
	noAck    bool // --acks 0: no answers, so no offsets
	progress *progress

	mu         sync.Mutex
	lines      int64
	produced   int64
	bytes      int64
	unkeyed    int64
	partitions map[int32]*partitionStats
	firstErr   error
}

type partitionStats struct {
	Partition   int32 `json:"partition"`
	Records     int64 `json:"records"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
}

// produceSummary is the JSON summary; see the command's help.
type produceSummary struct {
	Topic      string           `json:"topic"`
	Lines      int64            `json:"lines"`
	Produced   int64            `json:"produced"`
	Failed     int64            `json:"failed"`
	Bytes      int64            `json:"bytes"`
	DurationMs int64            `json:"duration_ms"`
	Unkeyed    int64            `json:"unkeyed"`
	Partitions []partitionStats `json:"partitions"`
	Error      string           `json:"error,omitempty"`
}

// run produces every line of in until EOF or ctx ends, then waits for the
// records to be acknowledged. Lines are read by a goroutine so Ctrl-C is
// seen while a terminal read blocks; that goroutine ends at EOF or when the
// process exits, whichever is first (a blocked read cannot be canceled).
func (p *producer) run(ctx context.Context, cl *kgo.Client, in io.Reader, sep []byte, partition int32, hdrs []kgo.RecordHeader) error {
	type line struct {
		b   []byte
		err error
	}
	lines := make(chan line, 1024)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		r := bufio.NewReaderSize(in, 1<<16)
		for {
			b, err := r.ReadBytes('\n')
			if len(b) > 0 || (err != nil && err != io.EOF) {
				b = bytes.TrimSuffix(b, []byte("\n"))
				if err == io.EOF {
					err = nil
				}
				select {
				case lines <- line{b, err}:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()

	var runErr error
read:
	for {
		select {
		case <-ctx.Done():
			runErr = ctx.Err()
			break read
		case l, ok := <-lines:
			if !ok {
				break read
			}
			if l.err != nil {
				runErr = l.err
				break read
			}
			r := &kgo.Record{Topic: p.topic, Value: l.b, Headers: hdrs}
			if len(sep) > 0 {
				if k, v, found := bytes.Cut(l.b, sep); found {
					r.Key, r.Value = k, v
				} else {
					p.mu.Lock()
					p.unkeyed++
					p.mu.Unlock()
				}
			}
			if partition >= 0 {
				r.Partition = partition
			}
			p.mu.Lock()
			p.lines++
			p.mu.Unlock()
			cl.Produce(ctx, r, p.done)
		}
	}
	// Wait for what was handed to the client; after an interrupt, only
	// briefly.
	fctx := context.WithoutCancel(ctx)
	if runErr != nil {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(fctx, 5*time.Second)
		defer cancel()
	}
	if err := cl.Flush(fctx); err != nil {
		cl.AbortBufferedRecords(context.WithoutCancel(ctx))
	}
	return runErr
}

// done is the produce promise; kgo calls promises one at a time.
func (p *producer) done(r *kgo.Record, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.firstErr == nil {
			p.firstErr = err
		}
		return
	}
	p.produced++
	p.bytes += int64(len(r.Key) + len(r.Value))
	p.progress.add(1)
	ps := p.partitions[r.Partition]
	if ps == nil {
		ps = &partitionStats{Partition: r.Partition, FirstOffset: r.Offset}
		p.partitions[r.Partition] = ps
	}
	ps.Records++
	if p.noAck {
		ps.FirstOffset, ps.LastOffset = -1, -1
		return
	}
	ps.FirstOffset = min(ps.FirstOffset, r.Offset)
	ps.LastOffset = max(ps.LastOffset, r.Offset)
}

func (p *producer) summary() produceSummary {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := produceSummary{
		Topic: p.topic, Lines: p.lines, Produced: p.produced, Failed: p.lines - p.produced,
		Bytes: p.bytes, DurationMs: time.Since(p.start).Milliseconds(), Unkeyed: p.unkeyed,
		Partitions: []partitionStats{},
	}
	for _, ps := range p.partitions {
		s.Partitions = append(s.Partitions, *ps)
	}
	sort.Slice(s.Partitions, func(i, j int) bool { return s.Partitions[i].Partition < s.Partitions[j].Partition })
	if p.firstErr != nil {
		s.Error = p.firstErr.Error()
	}
	return s
}

func (p *producer) printSummary(w io.Writer, s produceSummary, sep string) {
	d := time.Duration(s.DurationMs) * time.Millisecond
	rate := float64(s.Produced) / max(d.Seconds(), 0.001)
	var parts []string
	for _, ps := range s.Partitions {
		parts = append(parts, fmt.Sprintf("%d", ps.Partition))
	}
	where := ""
	if len(parts) > 0 {
		where = fmt.Sprintf(", partitions %s", strings.Join(parts, ","))
	}
	fmt.Fprintf(w, "produced %d of %d records to %s (%s%s) in %v, %.0f records/s\n",
		s.Produced, s.Lines, s.Topic, units.Bytes(s.Bytes), where, d.Round(time.Millisecond), rate)
	if s.Unkeyed > 0 {
		fmt.Fprintf(w, "%d lines had no key separator %q and were produced without a key\n", s.Unkeyed, sep)
	}
}
