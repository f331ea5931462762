package main

import (
	"context"
	"os"
	"strings"

	"github.com/unirec/unirec/deploy/pipeline"
)

// cmdStatus prints what is running: topic ends, ingest lag, recent dead
// letters, and the model version and staleness of every process given,
// per use case with its freshness policy for replicas.
func cmdStatus(ctx context.Context, args []string) error {
	f := newFlags("status")
	procs := f.fs.String("processes", "http://localhost:8080", "comma-separated base URLs of unirec processes to ask (serve, train, run)")
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	return pipeline.WriteStatus(ctx, os.Stdout, cfg, strings.Split(*procs, ","))
}
