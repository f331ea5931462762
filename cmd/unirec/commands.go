package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"path/filepath"
	"time"

	"github.com/unirec/unirec/deploy/pipeline"
)

// cmdRun starts everything in one process on the embedded broker.
func cmdRun(ctx context.Context, args []string) error {
	f := newFlags("run")
	demo := f.fs.Bool("demo", true, "produce demo events for all four canvases")
	port := f.fs.Int("broker-port", 0, "port of the embedded broker (default broker.port, 9092; -1 picks a free one)")
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	cfg.Broker.Port = brokerPort(*port, cfg.Broker.Port)
	if f.listen != "" {
		cfg.Serve.Listen = f.listen
	}
	cfg.Demo.Enabled = *demo
	b, err := pipeline.StartBroker(ctx, &cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	p := pipeline.NewProcess(ctx, cfg, log.Printf)
	if err := pipeline.StartIngest(p); err != nil {
		return err
	}
	status := pipeline.NewStatusSource(cfg, "run")
	if err := pipeline.StartTrainer(p); err != nil {
		return err
	}
	if status.Replica, err = pipeline.StartReplica(p); err != nil {
		return err
	}
	status.Register(p.Mux)
	addr, err := p.ServeHTTP(cfg.Serve.Listen)
	if err != nil {
		p.Stop()
		return err
	}
	if cfg.Demo.Enabled {
		pipeline.StartDemo(p)
	}
	fmt.Print(welcome(b.Addr(), addr.String(), cfg))
	return p.Wait()
}

// brokerPort is the port of --port or --broker-port: flag when set (-1:
// a free one, 0 to the broker), else the config's.
func brokerPort(flag, config int) int {
	switch {
	case flag < 0:
		return 0
	case flag > 0:
		return flag
	}
	return config
}

// welcome is what `unirec run` prints once everything is up: where it all
// is, where its secrets are (never the secrets themselves), and a query,
// an event and an admin command to try, with the token headers they need
// (without them the API answers 401).
func welcome(broker, api string, cfg pipeline.Config) string {
	demo := fmt.Sprintf("on (%.0f requests/s)", cfg.Demo.Rate)
	if !cfg.Demo.Enabled {
		demo = "off"
	}
	snapshots := "NOT authenticated (snapshot.insecure: true)"
	if k := secretAt(cfg.Snapshot.HMACKeyFile, cfg.Snapshot.HMACKeyEnv); k != "" {
		snapshots = "signed and verified with the HMAC key in " + k
	}
	admin := "disabled (no serve.admin_token_file or serve.admin_token_env)"
	try := ""
	if t := secretAt(cfg.Serve.AdminTokenFile, cfg.Serve.AdminTokenEnv); t != "" {
		admin = fmt.Sprintf("http://%s/admin/rollback, /admin/resume (token in %s)", api, t)
		try = fmt.Sprintf("  curl -s -X POST%s %s/admin/resume\n", bearer(cfg.Serve.AdminTokenFile, cfg.Serve.AdminTokenEnv), api)
	}
	return fmt.Sprintf(`
unirec is running (data in %s)
  Kafka broker (embedded):  %s   topics: %s and %s (in), %s, %s, %s
  Status page:              http://%s/
  Serving API:              http://%s/v1/recommend   metrics: http://%s/metrics
  Snapshots:                %s
  Admin API:                %s
  Demo events:              %s

Try:
  curl -s%s %s/v1/recommend -d '{"use_case":"search","context":{"user_id":"u-1","query":"space documentary","country":"US"},"k":5}'
  echo '{"event_id":"e-1","time":"%s","canvas":"notifications","action":"click","item_id":"m-1","context":{"user_id":"u-1"}}' | kcat -P -b %s -t %s
%sStop with Ctrl-C.
`, cfg.DataDir, broker, cfg.Topics.Events, cfg.Topics.Catalog, cfg.Topics.Examples, cfg.Topics.DeadLetters, cfg.Topics.Snapshots,
		api, api, api, snapshots, admin, demo, bearer(cfg.Serve.APITokenFile, cfg.Serve.APITokenEnv), api,
		time.Now().UTC().Format(time.RFC3339), broker, cfg.Topics.Events, try)
}

// secretAt says where a secret configured by file or env is ("" when
// neither is set).
func secretAt(file, env string) string {
	switch {
	case file != "":
		return file
	case env != "":
		return "$" + env
	}
	return ""
}

// bearer is the curl header option sending a secret configured by file or
// env as a bearer token, without printing it ("" when neither is set).
func bearer(file, env string) string {
	switch {
	case file != "":
		return fmt.Sprintf(` -H "Authorization: Bearer $(cat %s)"`, file)
	case env != "":
		return fmt.Sprintf(` -H "Authorization: Bearer $%s"`, env)
	}
	return ""
}

// cmdBroker runs the embedded broker alone.
func cmdBroker(ctx context.Context, args []string) error {
	f := newFlags("broker")
	port := f.fs.Int("port", 0, "port to listen on (default broker.port, 9092; -1 picks a free one)")
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	cfg.Broker.Port = brokerPort(*port, cfg.Broker.Port)
	b, err := pipeline.StartBroker(ctx, &cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	log.Printf("broker: listening on %s (data in %s)", b.Addr(), filepath.Join(cfg.DataDir, "broker"))
	<-ctx.Done()
	return nil
}

// cmdIngest runs the ingest stage against --brokers.
func cmdIngest(ctx context.Context, args []string) error {
	return runStage(ctx, "ingest", args, pipeline.StartIngest, func(cfg pipeline.Config) string { return cfg.Ingest.Listen })
}

// cmdTrain runs the trainer and snapshot publisher against --brokers.
func cmdTrain(ctx context.Context, args []string) error {
	return runStage(ctx, "train", args, pipeline.StartTrainer, func(cfg pipeline.Config) string { return cfg.Trainer.Listen })
}

// cmdServe runs a serving replica against --brokers.
func cmdServe(ctx context.Context, args []string) error {
	return runStage(ctx, "serve", args, nil, func(cfg pipeline.Config) string { return cfg.Serve.Listen })
}

// runStage runs one stage (start; a replica when nil) as its own process
// with its own HTTP endpoint.
func runStage(ctx context.Context, name string, args []string, start func(*pipeline.Process) error, listen func(pipeline.Config) string) error {
	f := newFlags(name)
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	addr := listen(cfg)
	if f.listen != "" {
		addr = f.listen
	}
	if err := pipeline.EnsureTopics(ctx, cfg); err != nil {
		return err
	}
	p := pipeline.NewProcess(ctx, cfg, log.Printf)
	status := pipeline.NewStatusSource(cfg, name)
	if start != nil {
		err = start(p)
	} else {
		status.Replica, err = pipeline.StartReplica(p)
	}
	if err != nil {
		p.Stop()
		return err
	}
	if start != nil {
		p.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		p.Mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
	}
	status.Register(p.Mux)
	a, err := p.ServeHTTP(addr)
	if err != nil {
		p.Stop()
		return err
	}
	log.Printf("%s: running against %v, HTTP on %s", name, cfg.Kafka.Brokers, a)
	return p.Wait()
}
