// Command unirec runs the unirec pipeline: all stages in one process on an
// embedded broker (`unirec run`), or each stage as its own process against
// any Kafka cluster (`unirec broker|ingest|train|serve`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/unirec/unirec/deploy/pipeline"
)

const usage = `unirec - one shared multi-task recommender, learning in real time from Kafka

Usage:
  unirec run     [flags]   everything in one process on an embedded broker (make run)
  unirec broker  [flags]   the embedded Kafka-protocol broker alone
  unirec ingest  [flags]   events -> examples (exactly once), against --brokers
  unirec train   [flags]   examples -> model in Pebble -> snapshots, against --brokers
  unirec serve   [flags]   snapshots -> recommend API, against --brokers
  unirec bench   CMD ...   produce | replay | eval | throughput | freshness | latency | replica: size, tune and prove it
  unirec topics  create|check [flags]   create the topics, or check they are as unirec needs
  unirec dlq     inspect|replay [flags] read dead letters as JSON lines; re-inject fixed ones
  unirec status  [flags]   what is running: topics, lag, dead letters, model versions
  unirec snapshot list [--json]           snapshots and control records on the topic, checked (UNUSABLE ones flagged)
  unirec snapshot rollback --to VERSION   every replica serves VERSION and holds it
  unirec snapshot resume                  every replica serves the newest version again

Run "unirec <command> -h" for the flags of a command.
`

func main() {
	log.SetFlags(log.Ldate | log.Ltime | log.Lmicroseconds)
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runCommand(ctx, os.Args[1], os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Printf("unirec %s: %v", os.Args[1], err)
		os.Exit(1)
	}
}

func runCommand(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "run":
		return cmdRun(ctx, args)
	case "broker":
		return cmdBroker(ctx, args)
	case "ingest":
		return cmdIngest(ctx, args)
	case "train":
		return cmdTrain(ctx, args)
	case "serve":
		return cmdServe(ctx, args)
	case "bench":
		return cmdBench(ctx, args)
	case "topics":
		return cmdTopics(ctx, args)
	case "dlq":
		return cmdDLQ(ctx, args)
	case "status":
		return cmdStatus(ctx, args)
	case "snapshot":
		return cmdSnapshot(ctx, args)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// subcommand returns args[0] when it is one of names. Without one, or
// with -h/--help, it prints usage and returns flag.ErrHelp (exit status 2).
func subcommand(args []string, usage string, names ...string) (string, error) {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(os.Stderr, usage)
		return "", flag.ErrHelp
	}
	if !slices.Contains(names, args[0]) {
		return "", fmt.Errorf("unknown subcommand %q (want %s)\n%s", args[0], strings.Join(names, ", "), usage)
	}
	return args[0], nil
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// flags are the command-line overrides shared by every command.
type flags struct {
	fs      *flag.FlagSet
	role    pipeline.Role
	config  string
	brokers string
	dataDir string
	listen  string
	only    string
	reset   string
}

func newFlags(name string) *flags {
	f := &flags{fs: flag.NewFlagSet("unirec "+name, flag.ContinueOnError), role: roleOf(name)}
	f.fs.StringVar(&f.config, "config", "", "YAML config file (defaults apply to everything it leaves out)")
	f.fs.StringVar(&f.brokers, "brokers", "", "comma-separated Kafka bootstrap brokers, overriding kafka.brokers")
	f.fs.StringVar(&f.dataDir, "data-dir", "", "data directory, overriding data_dir")
	f.fs.StringVar(&f.listen, "listen", "", "HTTP listen address of this process")
	if name == "train" || name == "run" {
		f.fs.StringVar(&f.reset, "reset-offsets", "", "when the trainer's stored offsets are no longer on the examples topic: earliest or latest (default: fail), overriding trainer.reset_offsets")
	}
	if name == "serve" || name == "run" {
		f.fs.StringVar(&f.only, "use-cases", "", "comma-separated use cases this replica serves (default: all configured)")
	}
	return f
}

// roleOf is what command name runs: where its snapshot key comes from.
func roleOf(name string) pipeline.Role {
	switch name {
	case "run":
		return pipeline.RoleAll
	case "train", "serve":
		return pipeline.RoleStage
	case "snapshot list", "snapshot rollback", "snapshot resume":
		return pipeline.RoleOperator
	}
	return pipeline.RoleTool
}

// load parses args and the config file, applies the flag overrides,
// validates the result once and loads its secrets.
func (f *flags) load(args []string) (pipeline.Config, error) {
	if err := f.fs.Parse(args); err != nil {
		return pipeline.Config{}, err
	}
	if f.fs.NArg() > 0 {
		return pipeline.Config{}, fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	}
	cfg, err := pipeline.ReadConfig(f.config)
	if err != nil {
		return cfg, err
	}
	if f.brokers != "" {
		cfg.Kafka.Brokers = strings.Split(f.brokers, ",")
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	if f.only != "" {
		cfg.Serve.Only = strings.Split(f.only, ",")
	}
	if f.reset != "" {
		cfg.Trainer.ResetOffsets = f.reset
	}
	cfg.Role = f.role
	err = cfg.Validate()
	if err == nil {
		err = cfg.LoadSecrets()
	}
	if err != nil && f.config != "" {
		return cfg, fmt.Errorf("invalid config %q: %w", f.config, err)
	}
	return cfg, err
}
