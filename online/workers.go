package online

import (
	"runtime"
	"sync/atomic"
)

// workers run the parallel phases of a mini-batch (step.go): a phase is
// cut into units, claimed one at a time by whoever is free, the learner
// first. The learner does units itself until none is left, then waits
// only for the units in progress, so a helper the scheduler has not run
// yet delays nothing (as with the log stage). What a unit computes must
// not depend on who runs it: that keeps the model independent of the
// number of workers.
type workers struct {
	n     int              // workers, the learner included
	jobs  []chan *phaseJob // one per helper
	scrat []*stepScratch   // per worker; [0] is the learner's
}

// phaseJob is one phase: units claimed by an atomic counter.
type phaseJob struct {
	units int64
	fn    func(w, u int)
	next  atomic.Int64
	done  atomic.Int64
}

// startWorkers starts n-1 helpers; stop ends them. Between jobs a helper
// calls help until it reports nothing left or a job is waiting (the
// trainer's log stage, which the learner would otherwise do in phase 1).
func startWorkers(n int, scratch func() *stepScratch, help func() bool) *workers {
	ws := &workers{n: n}
	for w := range n {
		ws.scrat = append(ws.scrat, scratch())
		if w > 0 {
			ch := make(chan *phaseJob, 1)
			ws.jobs = append(ws.jobs, ch)
			go func() {
				for j := range ch {
					j.work(w)
					for len(ch) == 0 && help() {
					}
				}
			}()
		}
	}
	return ws
}

func (ws *workers) stop() {
	for _, ch := range ws.jobs {
		close(ch)
	}
}

// run calls fn(w, u) for every unit u in [0, units) once, on some worker
// w, and returns when all have returned.
func (ws *workers) run(units int, fn func(w, u int)) {
	j := &phaseJob{units: int64(units), fn: fn}
	for _, ch := range ws.jobs {
		select {
		case ch <- j:
		default: // that helper has not taken the last job yet: swap it for this one
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- j:
			default:
			}
		}
	}
	j.work(0)
	for spins := 1; j.done.Load() < j.units; spins++ {
		if spins%64 == 0 {
			runtime.Gosched()
		}
	}
}

// work claims and runs units until none is left.
func (j *phaseJob) work(w int) {
	for {
		u := j.next.Add(1) - 1
		if u >= j.units {
			return
		}
		j.fn(w, int(u))
		j.done.Add(1)
	}
}
