package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress draws a one-line progress bar (done/total, rate, ETA) at most
// ten times a second. A nil *Progress draws nothing.
type Progress struct {
	w     io.Writer
	what  string
	total int
	start time.Time
	last  time.Time
}

// NewProgress starts a progress bar over total units of what; it is nil
// (draws nothing) when w is nil.
func NewProgress(w io.Writer, what string, total int) *Progress {
	if w == nil {
		return nil
	}
	now := time.Now()
	return &Progress{w: w, what: what, total: total, start: now}
}

// Update redraws the bar for done units.
func (p *Progress) Update(done int) {
	if p == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < p.total {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64(done) / max(el, 1e-9)
	frac := 0.0
	if p.total > 0 {
		frac = float64(done) / float64(p.total)
	}
	eta := "?"
	if rate > 0 && p.total > 0 {
		eta = (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second).String()
	}
	bar := strings.Repeat("#", int(frac*30)) + strings.Repeat(".", 30-int(frac*30))
	fmt.Fprintf(p.w, "\r%s [%s] %d/%d %s  %.0f/s  ETA %s   ", p.what, bar, done, p.total, p.what, rate, eta)
}

// Done ends the bar.
func (p *Progress) Done(done int) {
	if p == nil {
		return
	}
	p.last = time.Time{}
	p.Update(done)
	fmt.Fprintln(p.w)
}
