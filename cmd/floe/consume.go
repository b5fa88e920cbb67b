package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newConsumeCmd() *cobra.Command {
	var (
		cf            clientFlags
		o             consumeOptions
		partitions    []int32
		offset        string
		fromBeginning bool
		output        string
	)
	cmd := clientCommand(&cobra.Command{
		Use:   "consume TOPIC...",
		Short: "Print records of topics, alone or as a consumer group",
		Long: `Print the records of one or more topics, one per line.

Where it starts:
  (default)              at the end: only records produced from now on
  --from-beginning       at the start of every partition
  --offset OFFSET        at OFFSET in every partition (or only those of
                         --partition): a number, -N for N before the end,
                         earliest or latest; clamped to what exists
  --group G              as member G of a consumer group, where the group
                         committed; partitions without a committed offset
                         start at the end, or the start with
                         --from-beginning (auto.offset.reset)

When it stops:
  -n COUNT               after COUNT records
  -e, --exit-at-end      when it has printed everything that was in its
                         partitions when it started (with --group: when
                         every partition assigned to it is at its end)
  --timeout DURATION     when no record has arrived for DURATION
  otherwise              on Ctrl-C
It exits 0 when it stopped as asked or on Ctrl-C, and 1 when --timeout
ran out before -n COUNT records or before the end with -e.

With --group it commits what it printed: every few seconds, when the group
rebalances, and on exit. On exit every partition assigned to it gets a
committed offset, as a Java consumer's would: after the last record it
printed there, or where it started if it printed none. With -n, exactly
the records printed are committed, so a later consumer of the group
continues with the next record.

--format prints each record as a template followed by a newline (unless
the template ends with \n):
  %t topic   %p partition   %o offset   %T timestamp (Unix ms)
  %k key     %v value (%s too)   %h headers (k=v,k=v)
  %K key length   %V value length   %% a percent sign
  \n newline   \t tab   \\ backslash

-o json prints one JSON object per line (JSON Lines): {"topic",
"partition", "offset", "timestamp" (RFC 3339, UTC), "key", "value",
"headers": [{"key", "value"}]}. "key" is null for a record without a key,
"value" null for a null value (a tombstone). A key, value or header value
that is not valid UTF-8 is given as "key_base64", "value_base64" or
"value_base64" (in the header) instead, with "key"/"value" null.`,
		Example: `  floe consume demo --from-beginning -e --format '%p/%o %k=%v'
  floe consume demo --group billing -n 100 -o json
  floe consume demo --partition 2 --offset=-10 -e`,
		Args: argsRange(1, -1, "TOPIC"),
		RunE: func(cmd *cobra.Command, topics []string) error {
			o.topics = topics
			var err error
			if o.output, err = outputFormat(cmd, output); err != nil {
				return err
			}
			fs := cmd.Flags()
			switch {
			case o.output == outputJSON && fs.Changed("format"):
				return usageError(cmd, "--format and -o json do not go together")
			case o.count < 0:
				return usageError(cmd, "-n %d: COUNT must be positive", o.count)
			case o.group != "" && fs.Changed("offset"):
				return usageError(cmd, "--offset does not go with --group: a group starts where it committed; move it with `floe group reset-offsets`")
			case o.group != "" && fs.Changed("partition"):
				return usageError(cmd, "--partition does not go with --group: the group assigns partitions")
			case fs.Changed("partition") && len(topics) > 1:
				return usageError(cmd, "--partition needs exactly one TOPIC")
			case fromBeginning && fs.Changed("offset"):
				return usageError(cmd, "--from-beginning and --offset do not go together")
			}
			if o.format, err = parseFormat(o.formatText); err != nil {
				return usageError(cmd, "--format: %v", err)
			}
			o.start = "latest"
			switch {
			case fromBeginning:
				o.start = "earliest"
			case fs.Changed("offset"):
				o.start = offset
				if _, _, err := parseStartOffset(offset); err != nil {
					return usageError(cmd, "--offset: %v", err)
				}
			}
			o.partitions = partitions
			return runConsume(cmd, &cf, &o)
		},
	})
	fs := cmd.Flags()
	cf.register(fs)
	fs.StringVarP(&o.group, "group", "g", "", "consume as this consumer group and commit offsets")
	fs.BoolVar(&fromBeginning, "from-beginning", false, "start at the start of each partition (with --group: where the group has no committed offset)")
	fs.Int32SliceVarP(&partitions, "partition", "p", nil, "consume only these partitions (comma-separated or repeated)")
	fs.StringVar(&offset, "offset", "latest", "where to start: a number, -N (N before the end), earliest or latest")
	fs.Int64VarP(&o.count, "count", "n", 0, "exit after COUNT records (0: no limit)")
	fs.BoolVarP(&o.exitAtEnd, "exit-at-end", "e", false, "exit at the end of the partitions, as they were at start (kcat -e)")
	fs.DurationVar(&o.timeout, "timeout", 0, "exit when no record arrives for this long (0: wait forever)")
	fs.StringVarP(&o.formatText, "format", "f", "%v", "template of each printed record (see above)")
	fs.StringVarP(&output, "output", "o", "text", "text (records by --format) or json (JSON Lines)")
	return cmd
}

type consumeOptions struct {
	topics     []string
	group      string
	partitions []int32
	start      string // earliest, latest, N or -N
	count      int64
	exitAtEnd  bool
	timeout    time.Duration
	formatText string
	format     recordFormat
	output     string
}

// parseStartOffset parses --offset: (kind, n) with kind "earliest",
// "latest", "at" (n >= 0) or "fromEnd" (n records before the end).
func parseStartOffset(s string) (string, int64, error) {
	switch s {
	case "earliest", "beginning", "start", "oldest":
		return "earliest", 0, nil
	case "latest", "end", "newest":
		return "latest", 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%q: use a number, -N, earliest or latest", s)
	}
	if n < 0 {
		return "fromEnd", -n, nil
	}
	return "at", n, nil
}

type topicPartition struct {
	topic     string
	partition int32
}

// partPos is where consumption of one partition stands.
type partPos struct {
	pos       int64 // the next offset to print
	end       int64 // the end offset when consumption started (for -e)
	committed int64 // what the group has committed; -1 for nothing
}

// consumer prints records and, in a group, commits what it printed. The
// rebalance callbacks run on the client's goroutine, serialized with
// processing by BlockRebalanceOnPoll; mu guards the state they share.
type consumer struct {
	o   *consumeOptions
	cmd *cobra.Command
	cl  *kgo.Client
	w   *bufio.Writer

	mu       sync.Mutex
	parts    map[topicPartition]*partPos
	assigned bool  // a group assignment has been received
	fatal    error // from a rebalance callback
	printed  int64
}

func runConsume(cmd *cobra.Command, cf *clientFlags, o *consumeOptions) error {
	ctx := cmd.Context()
	adm, err := cf.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	tds, err := adm.ListTopicsWithInternal(ctx, o.topics...)
	if err != nil {
		return explain("describing topics", err, "")
	}
	for _, t := range o.topics {
		td, ok := tds[t]
		if !ok || td.Err != nil {
			e := kerr.UnknownTopicOrPartition
			if ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				return explain(fmt.Sprintf("topic %q", t), td.Err, "")
			}
			return explain(fmt.Sprintf("topic %q", t), e, "")
		}
		for _, p := range o.partitions {
			if _, ok := td.Partitions[p]; !ok {
				return fmt.Errorf("topic %q has %d partitions (0 to %d): --partition %d does not exist", t, len(td.Partitions), len(td.Partitions)-1, p)
			}
		}
	}

	c := &consumer{o: o, cmd: cmd, parts: map[topicPartition]*partPos{}, w: bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)}
	opts := []kgo.Opt{kgo.FetchMaxWait(time.Second)}
	if o.group == "" {
		start, err := c.directStart(ctx, adm, tds)
		if err != nil {
			return err
		}
		opts = append(opts, kgo.ConsumePartitions(start))
	} else {
		reset := kgo.NewOffset().AtEnd()
		if o.start == "earliest" {
			reset = kgo.NewOffset().AtStart()
		}
		opts = append(opts,
			kgo.ConsumerGroup(o.group),
			kgo.ConsumeTopics(o.topics...),
			kgo.ConsumeResetOffset(reset),
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(c.onAssigned),
			kgo.OnPartitionsRevoked(c.onRevoked),
			kgo.OnPartitionsLost(c.onLost),
		)
	}
	if len(c.parts) == 0 && o.group == "" {
		return nil // -e with everything already at its end
	}
	cl, err := cf.client(ctx, opts...)
	if err != nil {
		return err
	}
	c.cl = cl
	defer cl.CloseAllowingRebalance()

	err = c.loop(ctx)
	if o.group != "" {
		// Commit what was printed even after Ctrl-C.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		cerr := c.commit(cctx, cl, nil)
		cancel()
		if err == nil && cerr != nil {
			err = cerr
		}
	}
	if isTerminal(cmd.ErrOrStderr()) {
		c.mu.Lock()
		n := c.printed
		c.mu.Unlock()
		fmt.Fprintf(cmd.ErrOrStderr(), "consumed %d records\n", n)
	}
	return err
}

// directStart lists the partitions' offsets and decides where each starts.
// With -e, partitions already at their end are left out.
func (c *consumer) directStart(ctx context.Context, adm *kadm.Client, tds kadm.TopicDetails) (map[string]map[int32]kgo.Offset, error) {
	starts, err := adm.ListStartOffsets(ctx, c.o.topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, explain("listing start offsets", err, "")
	}
	ends, err := adm.ListEndOffsets(ctx, c.o.topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, explain("listing end offsets", err, "")
	}
	kind, n, _ := parseStartOffset(c.o.start)
	out := map[string]map[int32]kgo.Offset{}
	for _, t := range c.o.topics {
		ps := c.o.partitions
		if len(ps) == 0 {
			for p := range tds[t].Partitions {
				ps = append(ps, p)
			}
		}
		for _, p := range ps {
			s, _ := starts.Lookup(t, p)
			e, _ := ends.Lookup(t, p)
			var pos int64
			switch kind {
			case "earliest":
				pos = s.Offset
			case "latest":
				pos = e.Offset
			case "fromEnd":
				pos = max(e.Offset-n, s.Offset)
			case "at":
				pos = n
				if pos < s.Offset || pos > e.Offset {
					pos = min(max(pos, s.Offset), e.Offset)
					fmt.Fprintf(c.cmd.ErrOrStderr(), "floe: %s/%d has offsets %d to %d; starting at %d instead of %d\n", t, p, s.Offset, e.Offset, pos, n)
				}
			}
			if c.o.exitAtEnd && pos >= e.Offset {
				continue
			}
			if out[t] == nil {
				out[t] = map[int32]kgo.Offset{}
			}
			out[t][p] = kgo.NewOffset().At(pos)
			c.parts[topicPartition{t, p}] = &partPos{pos: pos, end: e.Offset, committed: -1}
		}
	}
	return out, nil
}

// onAssigned learns where newly assigned partitions start and end: the
// group's committed offset, else the start or end as --from-beginning says.
func (c *consumer) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	c.assigned = true
	c.mu.Unlock()
	if len(assigned) == 0 {
		return
	}
	adm := kadm.NewClient(cl)
	var topics []string
	for t := range assigned {
		topics = append(topics, t)
	}
	committed, err := adm.FetchOffsetsForTopics(ctx, c.o.group, topics...)
	if err == nil {
		err = committed.Error()
	}
	var starts, ends kadm.ListedOffsets
	if err == nil {
		starts, err = adm.ListStartOffsets(ctx, topics...)
	}
	if err == nil {
		ends, err = adm.ListEndOffsets(ctx, topics...)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.fatal = explain(fmt.Sprintf("group %q: reading offsets of its partitions", c.o.group), err, "")
		return
	}
	for t, ps := range assigned {
		for _, p := range ps {
			s, _ := starts.Lookup(t, p)
			e, _ := ends.Lookup(t, p)
			pp := &partPos{committed: -1, end: e.Offset}
			if co, ok := committed.Lookup(t, p); ok && co.At >= 0 {
				pp.committed = co.At
			}
			switch {
			case pp.committed >= s.Offset:
				pp.pos = pp.committed
			case c.o.start == "earliest":
				pp.pos = s.Offset
			default:
				pp.pos = e.Offset
			}
			c.parts[topicPartition{t, p}] = pp
		}
	}
}

func (c *consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	var which []topicPartition
	for t, ps := range revoked {
		for _, p := range ps {
			which = append(which, topicPartition{t, p})
		}
	}
	if err := c.commit(ctx, cl, which); err != nil {
		fmt.Fprintf(c.cmd.ErrOrStderr(), "floe: %v\n", err)
	}
	c.drop(revoked)
}

func (c *consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.drop(lost)
}

func (c *consumer) drop(parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, ps := range parts {
		for _, p := range ps {
			delete(c.parts, topicPartition{t, p})
		}
	}
}

// commit commits the position of the given partitions (nil: all assigned)
// where it differs from what the group has committed. cl is passed in
// because the rebalance callbacks may run before c.cl is set.
func (c *consumer) commit(ctx context.Context, cl *kgo.Client, which []topicPartition) error {
	if c.o.group == "" {
		return nil
	}
	c.mu.Lock()
	if which == nil {
		for tp := range c.parts {
			which = append(which, tp)
		}
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, tp := range which {
		pp := c.parts[tp]
		if pp == nil || pp.pos == pp.committed || pp.pos < 0 {
			continue
		}
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: pp.pos}
	}
	c.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					if cerr == nil {
						cerr = err
					}
					continue
				}
				if pp := c.parts[topicPartition{t.Topic, p.Partition}]; pp != nil {
					pp.committed = offsets[t.Topic][p.Partition].Offset
				}
			}
		}
	})
	if cerr != nil {
		return explain(fmt.Sprintf("committing offsets of group %q", c.o.group), cerr, "")
	}
	return nil
}

// atEnd reports whether every partition being consumed is at the end it
// had when consumption started.
func (c *consumer) atEnd() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.o.group != "" && (!c.assigned || len(c.parts) == 0) {
		return false
	}
	for _, pp := range c.parts {
		if pp.pos < pp.end {
			return false
		}
	}
	return true
}

func (c *consumer) loop(ctx context.Context) error {
	o := c.o
	prog := &progress{}
	if !isTerminal(c.cmd.OutOrStdout()) {
		prog = newProgress(c.cmd, "consumed", o.count)
	}
	defer prog.finish()
	var (
		lastRecord = time.Now()
		lastCommit = time.Now()
		warned     = map[string]bool{}
	)
	for {
		c.mu.Lock()
		printed, fatal := c.printed, c.fatal
		c.mu.Unlock()
		switch {
		case fatal != nil:
			return fatal
		case o.count > 0 && printed >= o.count:
			return nil
		case o.exitAtEnd && c.atEnd():
			return nil
		case ctx.Err() != nil:
			return nil // Ctrl-C ends a consumer normally
		}
		idle := time.Since(lastRecord)
		if o.timeout > 0 && idle >= o.timeout {
			switch {
			case o.count > 0:
				return fmt.Errorf("timed out: no record for %v, %d of %d records printed", o.timeout, printed, o.count)
			case o.exitAtEnd:
				return fmt.Errorf("timed out: no record for %v before reaching the end", o.timeout)
			}
			return nil
		}
		wait := 500 * time.Millisecond
		if o.timeout > 0 {
			wait = min(wait, o.timeout-idle)
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		limit := 0
		if o.count > 0 {
			limit = int(o.count - printed)
		}
		fetches := c.cl.PollRecords(pctx, limit)
		cancel()
		var werr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			msg := fmt.Sprintf("%s/%d: %v", t, p, err)
			if !warned[msg] {
				warned[msg] = true
				fmt.Fprintf(c.cmd.ErrOrStderr(), "floe: %s (retrying)\n", msg)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if werr != nil {
				return
			}
			if werr = c.print(r); werr != nil {
				return
			}
			c.mu.Lock()
			if pp := c.parts[topicPartition{r.Topic, r.Partition}]; pp != nil {
				pp.pos = r.Offset + 1
			}
			c.printed++
			c.mu.Unlock()
			prog.add(1)
			lastRecord = time.Now()
		})
		if werr == nil {
			werr = c.w.Flush()
		}
		if werr == nil && o.group != "" && time.Since(lastCommit) > 5*time.Second {
			lastCommit = time.Now()
			werr = c.commit(ctx, c.cl, nil)
			if interrupted(ctx, werr) {
				werr = nil
			}
		}
		c.cl.AllowRebalance()
		if werr != nil {
			return werr
		}
	}
}

func (c *consumer) print(r *kgo.Record) error {
	if c.o.output == outputJSON {
		return writeJSONLine(c.w, newRecordJSON(r))
	}
	c.o.format(c.w, r)
	return nil
}

// recordJSON is one record of `floe consume -o json`; see the help.
type recordJSON struct {
	Topic       string       `json:"topic"`
	Partition   int32        `json:"partition"`
	Offset      int64        `json:"offset"`
	Timestamp   string       `json:"timestamp"`
	Key         *string      `json:"key"`
	KeyBase64   string       `json:"key_base64,omitempty"`
	Value       *string      `json:"value"`
	ValueBase64 string       `json:"value_base64,omitempty"`
	Headers     []headerJSON `json:"headers"`
}

type headerJSON struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 string  `json:"value_base64,omitempty"`
}

// textOrBase64 returns b as a string when it is UTF-8, else as base64.
func textOrBase64(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

func newRecordJSON(r *kgo.Record) recordJSON {
	j := recordJSON{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano),
		Headers:   []headerJSON{},
	}
	j.Key, j.KeyBase64 = textOrBase64(r.Key)
	j.Value, j.ValueBase64 = textOrBase64(r.Value)
	for _, h := range r.Headers {
		hj := headerJSON{Key: h.Key}
		hj.Value, hj.ValueBase64 = textOrBase64(h.Value)
		if hj.Value == nil && hj.ValueBase64 == "" {
			empty := ""
			hj.Value = &empty
		}
		j.Headers = append(j.Headers, hj)
	}
	return j
}

// recordFormat writes one record by a --format template.
type recordFormat func(w io.Writer, r *kgo.Record)

// parseFormat compiles a --format template; see the command's help.
func parseFormat(f string) (recordFormat, error) {
	var parts []func(w io.Writer, r *kgo.Record)
	lit := func(s string) func(io.Writer, *kgo.Record) {
		return func(w io.Writer, _ *kgo.Record) { io.WriteString(w, s) }
	}
	var buf strings.Builder
	flush := func() {
		if buf.Len() > 0 {
			parts = append(parts, lit(buf.String()))
			buf.Reset()
		}
	}
	for i := 0; i < len(f); i++ {
		ch := f[i]
		if (ch != '%' && ch != '\\') || i+1 == len(f) {
			if ch == '%' || ch == '\\' {
				return nil, fmt.Errorf("%q ends with a lone %c", f, ch)
			}
			buf.WriteByte(ch)
			continue
		}
		i++
		next := f[i]
		if ch == '\\' {
			switch next {
			case 'n':
				buf.WriteByte('\n')
			case 't':
				buf.WriteByte('\t')
			case 'r':
				buf.WriteByte('\r')
			case '\\':
				buf.WriteByte('\\')
			default:
				return nil, fmt.Errorf("unknown escape \\%c: use \\n, \\t, \\r or \\\\", next)
			}
			continue
		}
		var fn func(io.Writer, *kgo.Record)
		switch next {
		case '%':
			buf.WriteByte('%')
			continue
		case 't':
			fn = func(w io.Writer, r *kgo.Record) { io.WriteString(w, r.Topic) }
		case 'p':
			fn = func(w io.Writer, r *kgo.Record) { io.WriteString(w, strconv.Itoa(int(r.Partition))) }
		case 'o':
			fn = func(w io.Writer, r *kgo.Record) { io.WriteString(w, strconv.FormatInt(r.Offset, 10)) }
		case 'T':
			fn = func(w io.Writer, r *kgo.Record) { io.WriteString(w, strconv.FormatInt(r.Timestamp.UnixMilli(), 10)) }
		case 'k':
			fn = func(w io.Writer, r *kgo.Record) { w.Write(r.Key) }
		case 'v', 's':
			fn = func(w io.Writer, r *kgo.Record) { w.Write(r.Value) }
		case 'K':
			fn = func(w io.Writer, r *kgo.Record) { io.WriteString(w, strconv.Itoa(len(r.Key))) }
		case 'V', 'S':
			fn = func(w io.Writer, r *kgo.Record) { io.WriteString(w, strconv.Itoa(len(r.Value))) }
		case 'h':
			fn = func(w io.Writer, r *kgo.Record) {
				for i, h := range r.Headers {
					if i > 0 {
						io.WriteString(w, ",")
					}
					io.WriteString(w, h.Key+"="+string(h.Value))
				}
			}
		default:
			return nil, fmt.Errorf("unknown %%%c: use %%t %%p %%o %%T %%k %%v %%h %%K %%V or %%%%", next)
		}
		flush()
		parts = append(parts, fn)
	}
	if !strings.HasSuffix(buf.String(), "\n") {
		buf.WriteByte('\n')
	}
	flush()
	return func(w io.Writer, r *kgo.Record) {
		for _, p := range parts {
			p(w, r)
		}
	}, nil
}
