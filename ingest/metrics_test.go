package ingest_test

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// metricValue reads one sample of set by its full name.
func metricValue(set *metrics.Set, name string) float64 {
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

func waitForMetric(t *testing.T, set *metrics.Set, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for metricValue(set, name) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed at %v, want %v", name, metricValue(set, name), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
