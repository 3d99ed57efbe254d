package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bodies are JSON of exactly the configured size:
//
//	{"ts":"0000000000000000000","payload":"xxx…"}
//
// ts is a publish time in Unix nanoseconds (zeros outside the latency runs);
// it is a string because a JSON number may not have leading zeros.
const (
	bodyPrefix = `{"ts":"`
	tsDigits   = 19
	bodyMiddle = `","payload":"`
	bodySuffix = `"}`
	bodyFixed  = len(bodyPrefix) + tsDigits + len(bodyMiddle) + len(bodySuffix)
	minBody    = bodyFixed + 1
)

// makeBody returns a body of size bytes carrying ts.
func makeBody(size int, ts int64) []byte {
	b := make([]byte, 0, size)
	b = append(b, bodyPrefix...)
	b = fmt.Appendf(b, "%0*d", tsDigits, ts)
	b = append(b, bodyMiddle...)
	b = append(b, bytes.Repeat([]byte("x"), size-bodyFixed)...)
	b = append(b, bodySuffix...)
	return b
}

// bodyTime reads the timestamp makeBody wrote.
func bodyTime(body []byte) (int64, bool) {
	if len(body) < len(bodyPrefix)+tsDigits || !bytes.HasPrefix(body, []byte(bodyPrefix)) {
		return 0, false
	}
	ts, err := strconv.ParseInt(string(body[len(bodyPrefix):len(bodyPrefix)+tsDigits]), 10, 64)
	return ts, err == nil
}

// measurement is one timed run of a contender.
type measurement struct {
	elapsed    time.Duration
	clientCPU  time.Duration // CPU of this process during the run, plus child processes' when there are any
	machineCPU time.Duration // busy CPU time of the whole machine (broker included), from /proc/stat
	extra      map[string]float64
}

// timer marks the timed part of a run: everything between start and stop.
type timer struct {
	began    time.Time
	selfCPU  time.Duration
	machine  time.Duration
	profFile *os.File
	// unsettled: the machine was still busy when timing began.
	unsettled bool
}

// startTimer snapshots the clocks; with profile set it also starts a CPU
// profile of this process into that file.
func startTimer(profile string) *timer {
	t := &timer{}
	if profile != "" {
		if f, err := os.Create(profile); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				t.profFile = f
			} else {
				f.Close()
			}
		}
	}
	t.selfCPU = selfCPU()
	t.machine = machineBusy()
	t.began = time.Now()
	return t
}

func (t *timer) stop() measurement {
	m := measurement{elapsed: time.Since(t.began), extra: map[string]float64{}}
	if t.unsettled {
		m.extra["unsettled"] = 1
	}
	m.clientCPU = selfCPU() - t.selfCPU
	m.machineCPU = machineBusy() - t.machine
	if t.profFile != nil {
		pprof.StopCPUProfile()
		t.profFile.Close()
	}
	return m
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, the unit of /proc CPU times (100 on Linux).
const clockTick = 10 * time.Millisecond

// machineBusy is the machine's busy CPU time since boot (all but idle and
// iowait), from the first line of /proc/stat.
func machineBusy() time.Duration {
	busy, _, _ := cpuTimes()
	return time.Duration(busy) * clockTick
}

// cpuTimes are the aggregate busy and iowait times from /proc/stat.
func cpuTimes() (busy, iowait, total int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	for i, f := range strings.Fields(line)[1:] {
		if i >= 8 { // guest times are already in user
			break
		}
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		switch i {
		case 3: // idle
		case 4:
			iowait += v
		default:
			busy += v
		}
	}
	return busy, iowait, total
}

// settle waits (up to max) until the machine is quiet: under 15% busy and
// 10% iowait over 200ms. The broker cleans up a deleted queue's files in the
// background; without this the contender after a large queue's deletion
// would pay for it. It reports whether the machine became quiet.
func settle(max time.Duration) bool {
	if max <= 0 {
		return true
	}
	deadline := time.Now().Add(max)
	for {
		b0, w0, t0 := cpuTimes()
		time.Sleep(200 * time.Millisecond)
		b1, w1, t1 := cpuTimes()
		if dt := t1 - t0; dt <= 0 || (float64(b1-b0) < 0.15*float64(dt) && float64(w1-w0) < 0.10*float64(dt)) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// procCPU is a process's user+system CPU time so far, from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

// procMem reads a process's VmRSS and VmHWM (peak RSS) in bytes.
func procMem(pid int) (rss, hwm int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// median of xs (NaN for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile of sorted xs by nearest rank (p in 0..100).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
