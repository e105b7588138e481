//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iocstream/iocstream/test/testenv"
)

// TestClickHouseTLS: a private ClickHouse serves the native protocol over
// TLS (tcp_port_secure) with a certificate of a private CA; iocd writes
// through it with IOC_CLICKHOUSE_TLS_CA, and refuses a server its CA did
// not sign.
func TestClickHouseTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t, dir, "ca")
	cert, key := newLeaf(t, dir, "server", ca, caKey, true)
	newCA(t, dir, "other-ca")
	secure := testenv.FreePort(t)
	confD := filepath.Join(dir, "config.d")
	if err := os.MkdirAll(confD, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, confD, "tls.xml", fmt.Sprintf(`<yandex>
    <tcp_port_secure>%d</tcp_port_secure>
    <openSSL><server>
        <certificateFile>%s</certificateFile>
        <privateKeyFile>%s</privateKeyFile>
        <dhParamsFile></dhParamsFile>
        <verificationMode>none</verificationMode>
    </server></openSSL>
</yandex>
`, secure, cert, key))
	if err := os.Chmod(key, 0o644); err != nil { // the server runs as this user, but keep it readable
		t.Fatal(err)
	}
	ch := startPrivateClickHouse(t, "CH_CONFIG_D="+confD)
	db, conn := testDBAt(t, ch.addr())
	ns := startNATS(t)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", secure)

	bad := newIOCD(t, ns.url(), db, "IOC_CLICKHOUSE_ADDR="+tlsAddr, "IOC_CLICKHOUSE_TLS_CA="+filepath.Join(dir, "other-ca.pem"))
	bad.start()
	select {
	case err := <-bad.done:
		bad.cmd = nil
		logs, _ := os.ReadFile(bad.logs)
		if err == nil || !strings.Contains(string(logs), "certificate signed by unknown authority") {
			t.Fatalf("a server signed by another CA was not refused clearly (exit %v):\n%s", err, logs)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("iocd with the wrong CA did not stop")
	}

	d := newIOCD(t, ns.url(), db, "IOC_CLICKHOUSE_ADDR="+tlsAddr, "IOC_CLICKHOUSE_TLS_CA="+filepath.Join(dir, "ca.pem"))
	d.start()
	_, js := connectJS(t, ns.url())
	waitStream(t, js)
	msgs := buildCorpus(t, 9, corpusBase(), 30)
	tr := groundTruth(msgs)
	publish(t, js, msgs)
	waitDrained(t, js)
	compareWithTruth(t, conn, db, tr, countRejected(tr), js)
	logs, _ := os.ReadFile(d.logs)
	if !strings.Contains(string(logs), tlsAddr) {
		t.Fatalf("iocd did not log the TLS address it writes to")
	}
}
