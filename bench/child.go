package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"time"
)

// A child process of the unirec binary (bench eval's systems, bench
// latency's replica, the end-to-end tests' processes) listens on ports it
// picks itself (port 0) and reports the addresses it bound on its output;
// the parent reads them from there. (Reserving a port in the parent and
// passing it down races with every other socket on the machine.)

// What a unirec process reports it bound, and the lines that say so.
const (
	AddrBroker = "broker"
	AddrHTTP   = "http"
)

var addrLines = []struct {
	kind string
	re   *regexp.Regexp
}{
	{AddrBroker, regexp.MustCompile(`Kafka broker \(embedded\):\s+(\S+)`)}, // unirec run
	{AddrBroker, regexp.MustCompile(`broker: listening on (\S+)`)},         // unirec broker
	{AddrHTTP, regexp.MustCompile(`Serving API:\s+http://([^/\s]+)/`)},     // unirec run
	{AddrHTTP, regexp.MustCompile(`, HTTP on (\S+)`)},                      // unirec ingest|train|serve
	{AddrHTTP, regexp.MustCompile(`^listening on (\S+)`)},                  // unirec bench replica
}

// ReportedAddr returns the kind (AddrBroker, AddrHTTP) and the address
// that a line of a unirec process's output reports it bound, if it does.
func ReportedAddr(line string) (kind, addr string, ok bool) {
	for _, l := range addrLines {
		if m := l.re.FindStringSubmatch(line); m != nil {
			return l.kind, m[1], true
		}
	}
	return "", "", false
}

// Child is a started process whose output is copied to a log and scanned
// for the addresses it reports.
type Child struct {
	Cmd   *exec.Cmd
	addrs chan [2]string // kind, address
	done  chan struct{}  // its output ended
}

// StartChild starts cmd with its stdout and stderr copied to log.
func StartChild(cmd *exec.Cmd, log io.Writer) (*Child, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close()
	c := &Child{Cmd: cmd, addrs: make(chan [2]string, 16), done: make(chan struct{})}
	go c.scan(r, log)
	return c, nil
}

func (c *Child) scan(r io.ReadCloser, log io.Writer) {
	defer close(c.done)
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if kind, addr, ok := ReportedAddr(line); ok {
			select {
			case c.addrs <- [2]string{kind, addr}:
			default:
			}
		}
	}
	io.Copy(log, r)
}

// Await returns the addresses of the kinds asked for, once the child
// reported them all, or an error when it ends or d passes first.
func (c *Child) Await(d time.Duration, kinds ...string) (map[string]string, error) {
	got := map[string]string{}
	timeout := time.After(d)
	for len(got) < len(kinds) {
		select {
		case a := <-c.addrs:
			for _, k := range kinds {
				if k == a[0] {
					got[k] = a[1]
				}
			}
		case <-c.done:
			for len(c.addrs) > 0 {
				a := <-c.addrs
				got[a[0]] = a[1]
			}
			if len(got) < len(kinds) {
				return nil, fmt.Errorf("it exited before reporting its addresses (%v so far)", got)
			}
		case <-timeout:
			return nil, fmt.Errorf("it reported no %v address within %s (%v so far)", kinds, d, got)
		}
	}
	return got, nil
}

// Stop interrupts the child and waits for it and its output.
func (c *Child) Stop() {
	c.Cmd.Process.Signal(os.Interrupt)
	c.Cmd.Wait()
	<-c.done
}
