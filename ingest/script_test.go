package ingest_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unirec/unirec/stream"
)

// The join and window state machine as data-driven scripts, in the style
// of pebble's datadriven tests: each file of testdata/join is a sequence
// of commands, each with its input and the output it must produce:
//
//	# a comment
//	batch now=40s
//	p0 search impression i1 t=0s req=r1 item=m-1
//	p1 raw {"event_id":
//	----
//	example i1 search impression label=0 weight=1
//	dead-letter bad_json: unexpected end of JSON input: ...
//
// Commands:
//
//	batch [now=D]   set the wall clock to t0+D (it stays put otherwise) and
//	                process the events below as one committed batch; the
//	                output is its examples and dead letters, in order
//	counts          the non-zero event outcomes, dead letters by reason
//	                and pending impressions counted so far
//
// An event line is "pP CANVAS ACTION ID t=D [req=R] [item=I] [ctx=K:V,...]"
// for an event of partition P dated t0+D (D may be negative; item m-1 and
// the canvas' usual context by default, ctx=- for none), or "pP raw BYTES"
// for a record value as it is. Run with -rewrite to write the output the
// scripts produce now into them (then read the diff).
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/join scripts")

func TestJoinScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/join/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata/join: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScript(t, file) })
	}
}

// scriptCmd is one command of a script: its directive, its input lines,
// the output it must produce and the line it starts on.
type scriptCmd struct {
	line      int
	directive string
	input     []string
	want      []string
}

// parseScript splits a script into its commands, keeping the comments and
// blank lines before each (pre) for -rewrite.
func parseScript(t *testing.T, path string) (cmds []scriptCmd, pre [][]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var lead []string
	for i := 0; i < len(lines); {
		if l := lines[i]; l == "" || strings.HasPrefix(l, "#") {
			lead = append(lead, l)
			i++
			continue
		}
		c := scriptCmd{line: i + 1, directive: lines[i]}
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			c.input = append(c.input, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: %q has no ---- line", path, c.line, c.directive)
		}
		for i++; i < len(lines) && lines[i] != ""; i++ {
			c.want = append(c.want, lines[i])
		}
		cmds, pre, lead = append(cmds, c), append(pre, lead), nil
	}
	return cmds, pre
}

func runScript(t *testing.T, path string) {
	cmds, pre := parseScript(t, path)
	s := newStage(t, nil)
	var rewritten []string
	for i, c := range cmds {
		got := s.run(c)
		if *rewrite {
			rewritten = append(rewritten, pre[i]...)
			rewritten = append(append(append(rewritten, c.directive), c.input...), "----")
			rewritten = append(rewritten, got...)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, c.line, c.directive, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.Join(rewritten, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run carries out one command and returns its output lines.
func (s *stage) run(c scriptCmd) []string {
	s.t.Helper()
	fields := strings.Fields(c.directive)
	switch fields[0] {
	case "batch":
		for _, arg := range fields[1:] {
			d, ok := strings.CutPrefix(arg, "now=")
			if !ok {
				s.t.Fatalf("line %d: unknown batch argument %q", c.line, arg)
			}
			s.now = t0.Add(s.duration(c.line, d))
		}
		var events []any
		for _, l := range c.input {
			p, value := s.eventLine(c.line, l)
			events = append(events, p, value)
		}
		return s.describe(s.batch(events...))
	case "counts":
		return s.counts()
	}
	s.t.Fatalf("line %d: unknown command %q", c.line, c.directive)
	return nil
}

// eventLine is the partition and record value of an event line.
func (s *stage) eventLine(line int, l string) (int32, string) {
	s.t.Helper()
	part, rest, _ := strings.Cut(l, " ")
	p, err := strconv.Atoi(strings.TrimPrefix(part, "p"))
	if err != nil || !strings.HasPrefix(part, "p") {
		s.t.Fatalf("line %d: %q does not start with a partition (p0, p1)", line, l)
	}
	if raw, ok := strings.CutPrefix(rest, "raw "); ok {
		return int32(p), raw
	}
	f := strings.Fields(rest)
	if len(f) < 4 {
		s.t.Fatalf("line %d: want CANVAS ACTION ID t=D, got %q", line, rest)
	}
	canvas, action, id := f[0], f[1], f[2]
	args := map[string]string{"item": "m-1", "ctx": "user_id:u1"}
	if canvas == "search" {
		args["ctx"] += ",query:space"
	}
	for _, kv := range f[3:] {
		k, v, _ := strings.Cut(kv, "=")
		args[k] = v
	}
	var ctx []string
	if args["ctx"] != "-" {
		for _, kv := range strings.Split(args["ctx"], ",") {
			k, v, _ := strings.Cut(kv, ":")
			ctx = append(ctx, fmt.Sprintf("%q:%q", k, v))
		}
	}
	at := t0.Add(s.duration(line, args["t"]))
	return int32(p), event(id, at, canvas, action, args["req"], args["item"], strings.Join(ctx, ","))
}

func (s *stage) duration(line int, d string) time.Duration {
	s.t.Helper()
	v, err := time.ParseDuration(d)
	if err != nil {
		s.t.Fatalf("line %d: bad duration %q: %v", line, d, err)
	}
	return v
}

// describe is a batch's examples and dead letters, one line each.
func (s *stage) describe(out outputs) []string {
	s.t.Helper()
	var lines []string
	for _, r := range out {
		switch r.Topic {
		case s.topics.Examples:
			var ex stream.Example
			if err := stream.DecodeExample(r.Value, &ex); err != nil {
				s.t.Fatal(err)
			}
			l := fmt.Sprintf("example %s %s %s label=%g weight=%g", ex.EventID, ex.Task, ex.Action, ex.Label, ex.Weight)
			if ex.SampleProb != 0 {
				l += fmt.Sprintf(" q=%g", ex.SampleProb)
			}
			lines = append(lines, l)
		case s.topics.DeadLetters:
			lines = append(lines, fmt.Sprintf("dead-letter %s: %s", stream.Header(r, stream.HeaderReason), stream.Header(r, stream.HeaderDetail)))
		}
	}
	return lines
}

// counts is the stage's non-zero event outcomes, dead letters by reason
// and pending impressions, in metric name order.
func (s *stage) counts() []string {
	var b strings.Builder
	s.set.WritePrometheus(&b)
	var lines []string
	for _, l := range strings.Split(b.String(), "\n") {
		name, v, _ := strings.Cut(l, " ")
		for _, prefix := range []string{"unirec_ingest_events_total", "unirec_ingest_dead_letters_total", "unirec_ingest_pending_impressions"} {
			if rest, ok := strings.CutPrefix(name, prefix); ok && v != "0" {
				lines = append(lines, strings.TrimPrefix(prefix, "unirec_ingest_")+rest+" "+v)
			}
		}
	}
	slices.Sort(lines)
	return lines
}
