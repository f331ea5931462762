package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is the record of one bench run: tables for people, figures for
// machines, plots where people would rather look than read.
type Report struct {
	Name    string            `json:"name"`
	Started time.Time         `json:"started"`
	Elapsed string            `json:"elapsed"`
	Machine Machine           `json:"machine"`
	GitRev  string            `json:"git_revision"`
	Config  map[string]any    `json:"config"`
	Figures map[string]any    `json:"figures"`
	Tables  []Table           `json:"tables"`
	Plots   map[string]string `json:"plots"` // file name -> title
	Notes   []string          `json:"notes"`

	plots map[string][]byte
}

// Table is one table of a report.
type Table struct {
	Title  string     `json:"title"`
	Header []string   `json:"header"`
	Rows   [][]string `json:"rows"`
}

// Machine describes where a run happened.
type Machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	MemGB  int    `json:"mem_gb"`
	GoVer  string `json:"go"`
	OS     string `json:"os"`
	Host   string `json:"host"`
	Kernel string `json:"kernel"`
	// Load is /proc/loadavg when the run started: the machine may be
	// shared, and figures move with it.
	Load string `json:"loadavg"`
}

// NewReport starts a report.
func NewReport(name string, config map[string]any) *Report {
	return &Report{Name: name, Started: time.Now().UTC(), Machine: machine(), GitRev: gitRev(),
		Config: config, Figures: map[string]any{}, Plots: map[string]string{}, plots: map[string][]byte{}}
}

// Figure records one measured figure.
func (r *Report) Figure(name string, v any) { r.Figures[name] = v }

// AddTable appends a table.
func (r *Report) AddTable(t Table) { r.Tables = append(r.Tables, t) }

// AddPlot attaches an SVG plot.
func (r *Report) AddPlot(file, title string, svg []byte) {
	r.Plots[file] = title
	r.plots[file] = svg
}

// Write writes report.md, report.json and the plots into dir.
func (r *Report) Write(dir string) error {
	r.Elapsed = time.Since(r.Started).Round(time.Millisecond).String()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create report dir %q: %w", dir, err)
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode report: %w", err)
	}
	files := map[string][]byte{"report.json": j, "report.md": []byte(r.Markdown())}
	for name, b := range r.plots {
		files[name] = b
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", name, err)
		}
	}
	return nil
}

// Markdown renders the report's tables and plots.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# unirec bench %s\n\n", r.Name)
	fmt.Fprintf(&b, "%s, %s; %d CPUs (%s), %d GB, %s, git %s; load average at start %s\n\n", r.Started.Format(time.RFC3339), r.Elapsed,
		r.Machine.CPUs, r.Machine.CPU, r.Machine.MemGB, r.Machine.GoVer, r.GitRev, r.Machine.Load)
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "## %s\n\n", t.Title)
		b.WriteString(MarkdownTable(t.Header, t.Rows))
		b.WriteString("\n")
	}
	for _, file := range slices.Sorted(maps.Keys(r.Plots)) {
		fmt.Fprintf(&b, "![%s](%s)\n\n", r.Plots[file], file)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return b.String()
}

// MarkdownTable renders a table.
func MarkdownTable(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return b.String()
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVer: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemGB = (kb + 512<<10) >> 20
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ") // 1, 5 and 15 minutes
		}
	}
	return m
}

func gitRev() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// ReportDir is dir, or bench-reports/<name>-<UTC time> when dir is empty.
func ReportDir(dir, name string) string {
	if dir != "" {
		return dir
	}
	return filepath.Join("bench-reports", name+"-"+time.Now().UTC().Format("20060102-150405"))
}
