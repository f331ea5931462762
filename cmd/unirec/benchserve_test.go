package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unirec/unirec/bench/load"
)

// TestBenchLatencySmoke runs `unirec bench latency` on a small catalog: it
// starts its replica as a child process, loads it at a fixed rate, then
// again while the replica applies deltas, and writes a report directory
// (with the latency CDF) whose counts add up, with the generator on the
// Ps it was given.
func TestBenchLatencySmoke(t *testing.T) {
	report := filepath.Join(t.TempDir(), "latency")
	cmd := exec.Command(unirecBin, "bench", "latency", "--items=2000", "--dim=8", "--queries=10", "--k=20",
		"--rate=40", "--duration=1s", "--warmup=0s", "--deltas=100ms", "--client-procs=3", "--report="+report)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench latency: %v\n%s", err, out)
	}
	checkReport(t, report, "latency-cdf.svg")
	var got struct {
		Figures struct {
			Latency load.LatencyReport `json:"latency"`
		} `json:"figures"`
	}
	readJSON(t, filepath.Join(report, "report.json"), &got)
	rep := got.Figures.Latency
	for name, res := range map[string]*struct {
		requests, errs, useCases int
	}{
		"at rate":     {rep.AtRate.All.Requests, len(rep.AtRate.All.Errors), len(rep.AtRate.UseCases)},
		"baseline":    {rep.Baseline.All.Requests, len(rep.Baseline.All.Errors), 4 * len(rep.Baseline.UseCases)},
		"with deltas": {rep.WithDeltas.All.Requests, len(rep.WithDeltas.All.Errors), len(rep.WithDeltas.UseCases)},
	} {
		if res.requests != 40 || res.errs != 0 || res.useCases != 4 {
			t.Errorf("%s: %d requests, errors %d, %d use cases; want 40, none, 4\n%s", name, res.requests, res.errs, res.useCases, out)
		}
	}
	if rep.AtRate.All.P50 <= 0 || rep.AtRate.All.P99 < rep.AtRate.All.P50 || rep.DeltasSeen < 1 {
		t.Errorf("p50 %s p99 %s deltas %d\n%s", rep.AtRate.All.P50, rep.AtRate.All.P99, rep.DeltasSeen, out)
	}
	if k := rep.Kernel; k.KernelTime <= 0 || k.ReadGBs <= 0 || k.Items != 2000 {
		t.Errorf("kernel figures: %+v", k)
	}
	if rep.ClientProcs != 3 {
		t.Errorf("the generator ran on %d Ps, want --client-procs 3", rep.ClientProcs)
	}
}

// bench latency --config sends the config's API token to the replica.
func TestBenchLatencyTakesTheAPITokenFromConfig(t *testing.T) {
	token := writeFile(t, "latency-api-token-0123456789\n")
	if got, err := apiToken(writeFile(t, "serve:\n  api_token_file: "+token+"\n")); err != nil || got != "latency-api-token-0123456789" {
		t.Fatalf("token %q, %v", got, err)
	}
	if _, err := apiToken(writeFile(t, "serve:\n  api_token_env: UNIREC_TEST_UNSET_TOKEN\n")); err == nil ||
		!strings.Contains(err.Error(), "serve.api_token") {
		t.Fatalf("an unset token variable: %v", err)
	}
}
