package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/throughput"
)

// Default sizes of bench throughput's stages.
const (
	throughputEvents   = 400_000
	throughputExamples = 300_000
)

// benchThroughput measures ingest and trainer throughput on an embedded
// broker in this process, each next to the raw consume rate of its topic
// and its floor, measured in the same run.
func benchThroughput(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("unirec bench throughput", flag.ContinueOnError)
	stage := fs.String("stage", "all", "ingest, trainer or all")
	events := fs.Int("events", 0, fmt.Sprintf("events (ingest) or examples (trainer) per stage (default %d / %d)", throughputEvents, throughputExamples))
	config := fs.String("config", "", "unirec config whose canvases, ingest, model and trainer settings are measured")
	report := fs.String("report", "", "report directory (default bench-reports/throughput-<time>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *stage != "ingest" && *stage != "trainer" && *stage != "all" || *events < 0 {
		return fmt.Errorf("--stage must be ingest, trainer or all (got %q) and --events not negative (got %d)", *stage, *events)
	}
	cfg, err := LoadConfig(*config)
	if err != nil {
		return err
	}
	rep := bench.NewReport("throughput", map[string]any{"stage": *stage, "events": *events, "config": *config,
		"canvases": len(cfg.Canvases), "ingest": cfg.Ingest, "model": cfg.Model, "trainer": cfg.Trainer})
	results, err := runThroughput(ctx, *stage, *events, cfg)
	if err != nil {
		return err
	}
	table := throughput.Table(results)
	rep.AddTable(table)
	rep.Figure("stages", results)
	for _, r := range results {
		rep.AddPlot("throughput-"+r.Stage+".svg", r.Stage+" throughput over time", throughput.Plot(r))
		fmt.Printf("%s: %.0f records/s = %.2fx the raw consume rate (%.0f/s) and %.2fx its floor (%s, %.0f/s), same run\n",
			r.Stage, r.Rate, r.RawRatio, r.RawRate, r.FloorRatio, r.Floor, r.FloorRate)
	}
	dir := (&benchFlags{report: *report}).reportDir("throughput")
	if err := rep.Write(dir); err != nil {
		return err
	}
	fmt.Print("\n" + bench.MarkdownTable(table.Header, table.Rows))
	fmt.Printf("report in %s\n", dir)
	return nil
}

// runThroughput runs the stages asked for, ingest first.
func runThroughput(ctx context.Context, stage string, n int, cfg Config) ([]*throughput.Result, error) {
	size := func(def int) int {
		if n > 0 {
			return n
		}
		return def
	}
	var out []*throughput.Result
	if stage == "ingest" || stage == "all" {
		r, err := throughput.Ingest(ctx, throughput.IngestOptions{Events: size(throughputEvents), Canvases: cfg.Canvases,
			AllowedLateness: cfg.Ingest.AllowedLateness, MaxEventBytes: cfg.Ingest.MaxEventBytes, Progress: os.Stderr})
		if err != nil {
			return nil, fmt.Errorf("cannot measure ingest throughput: %w", err)
		}
		out = append(out, r)
	}
	if stage == "trainer" || stage == "all" {
		r, err := throughput.Trainer(ctx, throughput.TrainerOptions{Examples: size(throughputExamples), Canvases: cfg.Canvases,
			Trainer: cfg.TrainerOptions(), Progress: os.Stderr})
		if err != nil {
			return nil, fmt.Errorf("cannot measure trainer throughput: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}
