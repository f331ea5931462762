package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// Every operations command and subcommand answers -h and --help with its
// usage on stderr and exit status 2, without doing anything else.
func TestEveryCommandHasHelp(t *testing.T) {
	commands := []string{
		"run", "broker", "ingest", "train", "serve", "status",
		"topics", "topics create", "topics check",
		"dlq", "dlq inspect", "dlq replay",
		"snapshot", "snapshot list", "snapshot rollback", "snapshot resume",
		"bench", "bench produce", "bench replay", "bench eval", "bench freshness", "bench throughput", "bench latency", "bench replica",
	}
	for _, c := range commands {
		for _, h := range []string{"-h", "--help"} {
			args := append(strings.Fields(c), h)
			out, err := exec.Command(unirecBin, args...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Errorf("unirec %s %s: %v, want exit status 2\n%s", c, h, err, out)
				continue
			}
			last := args[len(args)-2]
			if !strings.Contains(string(out), "Usage") || !strings.Contains(string(out), last) {
				t.Errorf("unirec %s %s does not print its usage:\n%s", c, h, out)
			}
		}
	}
}
