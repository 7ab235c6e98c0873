package main

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times on Linux.
const clockTicks = 100

// cpuSample is the machine's busy CPU time and that of the processes being measured, both
// in clock ticks, at one moment.
type cpuSample struct {
	at      time.Time
	machine int64
	ours    int64
}

// sampleCPU reads /proc/stat and /proc/<pid>/stat of every pid. A process that has
// exited by then (a database backend, say) is skipped: whether the servers are alive is
// checked elsewhere.
func sampleCPU(pids ...int) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	if s.machine, err = parseMachineBusy(string(b)); err != nil {
		return s, err
	}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue
		}
		if err != nil {
			return s, err
		}
		t, err := parseProcTicks(string(b))
		if err != nil {
			return s, err
		}
		s.ours += t
	}
	return s, nil
}

// otherCores is how many cores' worth of CPU processes other than ours (and wrk, which used
// wrkCPU) took between two samples: the measurement's share of a shared machine.
func otherCores(before, after cpuSample, wrkCPU time.Duration) float64 {
	wall := after.at.Sub(before.at).Seconds()
	if wall <= 0 {
		return 0
	}
	busy := float64(after.machine-before.machine) / clockTicks
	ours := float64(after.ours-before.ours)/clockTicks + wrkCPU.Seconds()
	return max(busy-ours, 0) / wall
}

// parseMachineBusy sums the busy fields of the "cpu" line of /proc/stat: everything but
// idle and iowait (guest time is already inside user).
func parseMachineBusy(stat string) (int64, error) {
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var busy int64
		for i, name := range []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"} {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return 0, errors.New("/proc/stat: bad " + name)
			}
			if name != "idle" && name != "iowait" {
				busy += v
			}
		}
		return busy, nil
	}
	return 0, errors.New("/proc/stat: no cpu line")
}

// parseProcTicks returns utime + stime of a /proc/<pid>/stat line. The command name in
// parentheses may hold spaces, so fields are counted from the last ')'.
func parseProcTicks(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc/<pid>/stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("/proc/<pid>/stat: too few fields")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("/proc/<pid>/stat: bad utime or stime")
	}
	return u + s, nil
}
