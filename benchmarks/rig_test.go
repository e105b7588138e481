//go:build integration

package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iocstream/iocstream/test/testenv"
)

// process is a child process whose output goes to a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	logs string
	done chan struct{}
	err  error     // the exit error, set when done is closed
	end  time.Time // when the process exited, set when done is closed
}

func startProcess(b *testing.B, name, logs string, env []string, bin string, args ...string) *process {
	b.Helper()
	logf, err := os.OpenFile(logs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	p := &process{name: name, cmd: exec.Command(bin, args...), logs: logs, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = testenv.RepoRoot(b)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		b.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.end = time.Now()
		logf.Close()
		close(p.done)
	}()
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits, killing the process after timeout.
func (p *process) stop(timeout time.Duration) error {
	if p.exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %s of SIGTERM", p.name, timeout)
	}
}

// tail returns the last lines of the process's log.
func (p *process) tail(lines int) string {
	data, _ := os.ReadFile(p.logs)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// clockTicks is USER_HZ, the unit of /proc CPU times, on every Linux
// architecture Go supports.
const clockTicks = 100

// cpuTime is the user plus system CPU time a process has used so far, from
// /proc/<pid>/stat; zero when the process is gone or pid is 0.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it start with
	// the state, field 3 of proc(5), so utime (14) and stime (15) are at
	// 11 and 12.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// systemCPU is the CPU time of every processor, from the first line of
// /proc/stat: busy (user, nice, system, irq, softirq) and stolen by the
// hypervisor.
func systemCPU() (busy, steal time.Duration) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	tick := func(i int) time.Duration {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(v) * time.Second / clockTicks
	}
	return tick(1) + tick(2) + tick(3) + tick(6) + tick(7), tick(8)
}

// peakRSS is VmHWM, the peak resident set size in bytes, of a process.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// clickhousePID finds the local clickhouse-server process, 0 if there is
// none (a remote ClickHouse): its CPU time is reported when it is local.
func clickhousePID() int {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		// The kernel keeps 15 bytes of the name: "clickhouse-serv".
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		if c := strings.TrimSpace(string(comm)); c == "clickhouse-serv" || c == "clickhouse-server" {
			return pid
		}
	}
	return 0
}

// rig is one nats-server process, one fresh ClickHouse database and what is
// needed to start iocd against them.
type rig struct {
	b        *testing.B
	dir      string
	iocdBin  string
	nats     *process
	natsURL  string
	db       string
	conn     driver.Conn
	nc       *nats.Conn
	js       jetstream.JetStream
	chPID    int
	iocdRuns int
	cleanups []func()
}

// close stops what the rig started and drops its database.
func (r *rig) close() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

// newRig starts the rig; the caller must close it (also when the benchmark
// fails, so defer it).
func newRig(b *testing.B) *rig {
	b.Helper()
	r := &rig{b: b, dir: b.TempDir(), iocdBin: testenv.Bin(b, "IOC_TEST_IOCD_BIN", "./cmd/iocd"), chPID: clickhousePID()}
	ready := false
	defer func() {
		if !ready {
			r.close()
		}
	}()
	natsBin := testenv.Bin(b, "IOC_TEST_NATS_SERVER_BIN", "github.com/nats-io/nats-server/v2")
	port := testenv.FreePort(b)
	r.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	r.nats = startProcess(b, "nats-server", filepath.Join(r.dir, "nats.log"), os.Environ(), natsBin,
		"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", filepath.Join(r.dir, "nats-store"))
	r.cleanups = append(r.cleanups, func() { _ = r.nats.stop(30 * time.Second) })
	waitFor(b, 15*time.Second, "nats-server to listen", func() (bool, string) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})

	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{testenv.ClickHouseAddr()}})
	if err != nil {
		b.Fatal(err)
	}
	if err := conn.Ping(context.Background()); err != nil {
		b.Fatalf("ClickHouse at %s is not reachable (make clickhouse starts it): %v", testenv.ClickHouseAddr(), err)
	}
	r.conn = conn
	r.db = fmt.Sprintf("ioc_bench_%d_%d", time.Now().Unix(), rand.IntN(1_000_000))
	r.cleanups = append(r.cleanups, func() {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+r.db); err != nil {
			b.Logf("drop database %s: %v", r.db, err)
		}
		conn.Close()
	})

	nc, err := nats.Connect(r.natsURL)
	if err != nil {
		b.Fatal(err)
	}
	r.cleanups = append(r.cleanups, nc.Close)
	r.nc = nc
	if r.js, err = jetstream.New(nc); err != nil {
		b.Fatal(err)
	}
	ready = true
	return r
}

// startIOCD starts iocd with the defaults of the contract (batches of
// 50 000, 1-minute windows) against the rig. Other IOC_* settings in the
// environment of the benchmark reach iocd too, which makes it easy to try
// a different batch size; extra settings take precedence (the last value
// of a variable wins in exec.Cmd.Env).
func (r *rig) startIOCD(extra ...string) (*process, string) {
	r.b.Helper()
	r.iocdRuns++
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(r.b))
	env := append(os.Environ(),
		"IOC_NATS_URL="+r.natsURL,
		"IOC_CLICKHOUSE_ADDR="+testenv.ClickHouseAddr(),
		"IOC_CLICKHOUSE_DATABASE="+r.db,
		"IOC_HTTP_ADDR="+httpAddr,
		"IOC_DATA_DIR="+filepath.Join(r.dir, "iocd-data"),
		"IOC_LOG_LEVEL=info",
		// The throughput figures include the Huế rule pack's evaluation.
		"IOC_RULES="+filepath.Join(testenv.RepoRoot(r.b), "deployments", "rules", "hue.yaml"),
	)
	if os.Getenv("IOC_BENCH_PPROF") != "" {
		env = append(env, "IOC_PPROF=true")
	}
	env = append(env, extra...)
	p := startProcess(r.b, "iocd", filepath.Join(r.dir, fmt.Sprintf("iocd-%d.log", r.iocdRuns)), env, r.iocdBin, "run")
	r.cleanups = append(r.cleanups, func() { _ = p.stop(30 * time.Second) })
	return p, httpAddr
}

// createStreams runs iocd once so that it creates the streams, the
// consumer and the tables, then stops it.
func (r *rig) createStreams() {
	r.b.Helper()
	iocd, _ := r.startIOCD()
	waitFor(r.b, time.Minute, "iocd to create the consumer", func() (bool, string) {
		if iocd.exited() {
			r.b.Fatalf("iocd exited: %v\n%s", iocd.err, iocd.tail(30))
		}
		_, err := r.js.Consumer(context.Background(), "IOC_EVENTS", "iocd")
		return err == nil, fmt.Sprint(err)
	})
	if err := iocd.stop(30 * time.Second); err != nil {
		r.b.Fatalf("stopping iocd after creating the streams: %v\n%s", err, iocd.tail(30))
	}
}

// waitReady waits for iocd's /readyz to answer 200: it consumes.
func (r *rig) waitReady(iocd *process, httpAddr string) {
	r.b.Helper()
	waitFor(r.b, time.Minute, "iocd to be ready", func() (bool, string) {
		if iocd.exited() {
			r.b.Fatalf("iocd exited: %v\n%s", iocd.err, iocd.tail(30))
		}
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// progress is what waitDrained observed.
type progress struct {
	firstDelivery time.Time // when the consumer was first seen to have delivered
	done          time.Time
}

// waitDrained polls until the consumer has acknowledged stream sequence n
// with nothing pending and the events table holds accepted rows. iocd
// acknowledges a batch only after its rows are stored, so the second
// condition is a check more than a wait.
func (r *rig) waitDrained(iocd *process, n, accepted int) progress {
	r.b.Helper()
	ctx := context.Background()
	cons, err := r.js.Consumer(ctx, "IOC_EVENTS", "iocd")
	if err != nil {
		r.b.Fatal(err)
	}
	var pr progress
	deadline := time.Now().Add(20 * time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		if iocd.exited() {
			r.b.Fatalf("iocd exited while draining: %v\n%s", iocd.err, iocd.tail(30))
		}
		info, err := cons.Info(ctx)
		now := time.Now()
		if err != nil {
			last = err.Error()
		} else {
			if pr.firstDelivery.IsZero() && info.Delivered.Stream > 0 {
				pr.firstDelivery = now
			}
			last = fmt.Sprintf("ack floor %d of %d, pending %d, ack pending %d", info.AckFloor.Stream, n, info.NumPending, info.NumAckPending)
			if info.AckFloor.Stream >= uint64(n) && info.NumPending == 0 && info.NumAckPending == 0 {
				if rows := r.count("SELECT count() FROM events"); rows >= uint64(accepted) {
					pr.done = time.Now()
					return pr
				} else {
					last = fmt.Sprintf("all acknowledged but events holds %d rows of %d", rows, accepted)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.b.Fatalf("timed out waiting for iocd to drain IOC_EVENTS (%s)\n%s", last, iocd.tail(30))
	return pr
}

// count runs a query returning one count in the rig's database.
func (r *rig) count(query string) uint64 {
	r.b.Helper()
	var n uint64
	if err := r.conn.QueryRow(context.Background(), strings.Replace(query, " FROM ", " FROM "+r.db+".", 1)).Scan(&n); err != nil {
		r.b.Fatalf("%s: %v", query, err)
	}
	return n
}

// verify checks, outside the timed part, that every accepted event is
// stored once and every rejected one is in the rejected table.
func (r *rig) verify(accepted, rejected int) {
	r.b.Helper()
	if got := r.count("SELECT uniqExact(id) FROM events"); got != uint64(accepted) {
		r.b.Fatalf("events holds %d distinct ids, want %d", got, accepted)
	}
	if got := r.count("SELECT count() FROM rejected FINAL"); got != uint64(rejected) {
		r.b.Fatalf("rejected holds %d rows, want %d", got, rejected)
	}
}

// waitFor polls cond until it returns true or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	testenv.WaitFor(tb, timeout, 100*time.Millisecond, what, cond)
}

// outDir returns the directory named by env, created, with a relative path
// taken from the repository root; "" when env is not set.
func outDir(b *testing.B, env string) string {
	b.Helper()
	dir := os.Getenv(env)
	if dir == "" {
		return ""
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(testenv.RepoRoot(b), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatalf("%s: %v", env, err)
	}
	return dir
}

// perfRecord samples a process with perf(1) when IOC_BENCH_PERF names a
// directory; the returned function stops it. perf costs the sampled
// process a few per cent, so runs with it are not the reported figures.
func perfRecord(b *testing.B, pid int, name string) (stop func()) {
	b.Helper()
	dir := outDir(b, "IOC_BENCH_PERF")
	if dir == "" {
		return func() {}
	}
	out := filepath.Join(dir, name+".perf.data")
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", out, "-p", strconv.Itoa(pid))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		b.Logf("perf record: %v", err)
		return func() {}
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); err != nil && !(ok && ws.Signaled() && ws.Signal() == syscall.SIGINT) {
			b.Logf("perf record: %v\n%s", err, stderr.String())
		}
		b.Logf("perf profile of %s written to %s (perf report -i %s --no-children)", name, out, out)
	}
}

// pprofCapture fetches a CPU profile of iocd from /debug/pprof/profile
// (served with IOC_PPROF=true) when IOC_BENCH_PPROF names a directory. It
// covers IOC_BENCH_PPROF_SECONDS (default 8) from iocd's start; the
// returned function waits for it.
func pprofCapture(b *testing.B, httpAddr, name string) (wait func()) {
	b.Helper()
	dir := outDir(b, "IOC_BENCH_PPROF")
	if dir == "" {
		return func() {}
	}
	seconds := 8
	if s := os.Getenv("IOC_BENCH_PPROF_SECONDS"); s != "" {
		var err error
		if seconds, err = strconv.Atoi(s); err != nil || seconds < 1 {
			b.Fatalf("IOC_BENCH_PPROF_SECONDS=%q is not a positive whole number", s)
		}
	}
	out := filepath.Join(dir, name+".cpu.pprof")
	done := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", httpAddr, seconds)
		client := &http.Client{Timeout: time.Duration(seconds)*time.Second + 30*time.Second}
		// iocd listens a few tens of milliseconds after it starts.
		var resp *http.Response
		var err error
		for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
			if resp, err = client.Get(url); err == nil {
				break
			}
		}
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
			done <- err
		case resp.StatusCode != http.StatusOK:
			done <- fmt.Errorf("%s: %s (does this iocd support IOC_PPROF?)", url, resp.Status)
		default:
			if err := os.WriteFile(out, data, 0o644); err != nil {
				done <- err
				return
			}
			// The heap as the CPU profile ends: what the drain holds.
			done <- fetchTo(client, fmt.Sprintf("http://%s/debug/pprof/heap", httpAddr), filepath.Join(dir, name+".heap.pprof"))
		}
	}()
	return func() {
		if err := <-done; err != nil {
			b.Logf("pprof: %v", err)
			return
		}
		b.Logf("CPU profile of %s (first %d s) written to %s (go tool pprof -top %s), and the heap then beside it",
			name, seconds, out, out)
	}
}

// fetchTo writes the body of a GET of url to file.
func fetchTo(client *http.Client, url, file string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// rawBatch is the fetch size of the raw reference drain, the one
// ../shared/PERFORMANCE.md measured at 240–300 000 msgs/s here.
const rawBatch = 1000

// rawDrain is the reference a backlog run is compared with: a plain
// durable pull consumer fetching the preloaded stream in batches of
// rawBatch and acknowledging each batch with one AckAll, nothing decoded
// or written. It runs before iocd, in the same rig, so the ratio holds
// when the machine drifts; its consumer is deleted after. It returns the
// rate and nats-server's CPU time per message meanwhile: the server's own
// floor for delivering the stream.
func (r *rig) rawDrain(n int) (rate float64, natsPerMsg time.Duration) {
	r.b.Helper()
	ctx := context.Background()
	const name = "raw-reference"
	cons, err := r.js.CreateOrUpdateConsumer(ctx, "IOC_EVENTS", jetstream.ConsumerConfig{Durable: name,
		AckPolicy: jetstream.AckAllPolicy, MaxAckPending: 100 * rawBatch, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		r.b.Fatal(err)
	}
	defer func() {
		if err := r.js.DeleteConsumer(ctx, "IOC_EVENTS", name); err != nil {
			r.b.Errorf("delete the raw reference consumer: %v", err)
		}
	}()
	start, cpu0 := time.Now(), cpuTime(r.nats.pid())
	got := 0
	for got < n {
		batch, err := cons.Fetch(rawBatch, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			r.b.Fatal(err)
		}
		var last jetstream.Msg
		for m := range batch.Messages() {
			last = m
			got++
		}
		if err := batch.Error(); err != nil {
			r.b.Fatalf("raw drain after %d of %d messages: %v", got, n, err)
		}
		if last == nil {
			r.b.Fatalf("raw drain: nothing more after %d of %d messages", got, n)
		}
		if err := last.Ack(); err != nil {
			r.b.Fatal(err)
		}
	}
	return float64(got) / time.Since(start).Seconds(), (cpuTime(r.nats.pid()) - cpu0) / time.Duration(got)
}
