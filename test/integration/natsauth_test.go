//go:build integration

package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestNATSAuthMethods: iocd connects to a nats-server that requires each
// of the authentication methods it supports (token, NKey, a .creds file in
// operator mode, TLS with a private CA and a client certificate), processes
// events, and refuses to start with wrong credentials.
func TestNATSAuthMethods(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup writes the server's config and returns it with iocd's
		// settings, the test client's options and iocd's wrong settings.
		setup func(t *testing.T, dir string) (conf string, env []string, client []nats.Option, wrong []string)
	}{
		{"token", func(t *testing.T, dir string) (string, []string, []nats.Option, []string) {
			conf := "authorization { token: \"tok-3f9a1c\" }\n"
			return conf, []string{"IOC_NATS_TOKEN=tok-3f9a1c"}, []nats.Option{nats.Token("tok-3f9a1c")},
				[]string{"IOC_NATS_TOKEN=not-it"}
		}},
		{"nkey", func(t *testing.T, dir string) (string, []string, []nats.Option, []string) {
			user, seed := newNKey(t, nkeys.CreateUser)
			pub, _ := user.PublicKey()
			seedFile := writeFile(t, dir, "iocd.nk", string(seed))
			_, otherSeed := newNKey(t, nkeys.CreateUser)
			other := writeFile(t, dir, "other.nk", string(otherSeed))
			conf := fmt.Sprintf("authorization { users = [ { nkey: %s } ] }\n", pub)
			opt, err := nats.NkeyOptionFromSeed(seedFile)
			if err != nil {
				t.Fatal(err)
			}
			return conf, []string{"IOC_NATS_NKEY_SEED=" + seedFile}, []nats.Option{opt}, []string{"IOC_NATS_NKEY_SEED=" + other}
		}},
		{"creds", func(t *testing.T, dir string) (string, []string, []nats.Option, []string) {
			conf, creds, otherCreds := operatorMode(t, dir)
			return conf, []string{"IOC_NATS_CREDS=" + creds}, []nats.Option{nats.UserCredentials(creds)},
				[]string{"IOC_NATS_CREDS=" + otherCreds}
		}},
		{"tls", func(t *testing.T, dir string) (string, []string, []nats.Option, []string) {
			ca, caKey := newCA(t, dir, "ca")
			serverCert, serverKey := newLeaf(t, dir, "server", ca, caKey, true)
			clientCert, clientKey := newLeaf(t, dir, "client", ca, caKey, false)
			newCA(t, dir, "other-ca")
			otherCA := filepath.Join(dir, "other-ca.pem")
			conf := fmt.Sprintf("tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true }\n",
				serverCert, serverKey, filepath.Join(dir, "ca.pem"))
			return conf, []string{"IOC_NATS_TLS_CA=" + filepath.Join(dir, "ca.pem"), "IOC_NATS_TLS_CERT=" + clientCert, "IOC_NATS_TLS_KEY=" + clientKey},
				[]nats.Option{nats.RootCAs(filepath.Join(dir, "ca.pem")), nats.ClientCert(clientCert, clientKey)},
				[]string{"IOC_NATS_TLS_CA=" + otherCA, "IOC_NATS_TLS_CERT=" + clientCert, "IOC_NATS_TLS_KEY=" + clientKey}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf, env, client, wrong := tc.setup(t, dir)
			ns := startNATSWith(t, nil, "-c", writeFile(t, dir, "nats.conf", conf))
			db, conn := testDB(t)

			bad := newIOCD(t, ns.url(), db, append(wrong, "IOC_SHUTDOWN_TIMEOUT=2s")...)
			bad.start()
			select {
			case err := <-bad.done:
				bad.cmd = nil
				if err == nil {
					t.Fatal("iocd with wrong credentials exited 0")
				}
				logs, _ := os.ReadFile(bad.logs)
				if !strings.Contains(string(logs), "connect to NATS") {
					t.Fatalf("wrong credentials: no clear error in the log:\n%s", logs)
				}
				lines := strings.Split(strings.TrimSpace(string(logs)), "\n")
				t.Logf("wrong credentials refused: %s", lines[len(lines)-1])
			case <-time.After(30 * time.Second):
				t.Fatal("iocd with wrong credentials did not stop")
			}

			d := newIOCD(t, ns.url(), db, env...)
			d.start()
			_, js := connectJS(t, ns.url(), client...)
			waitStream(t, js)
			waitFor(t, 60*time.Second, "iocd ready", func() (bool, string) { return ready(d.http), "not ready" })
			msgs := buildCorpus(t, 8, corpusBase(), 20)
			tr := groundTruth(msgs)
			publish(t, js, msgs)
			waitDrained(t, js)
			events := waitEventsStored(t, conn, db, len(tr.eventIDs))
			t.Logf("%d events stored through a %s connection", events, tc.name)
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newNKey(t *testing.T, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, []byte) {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return kp, seed
}

// operatorMode makes an operator, a system account and an account with
// JetStream, a user of that account (its .creds file) and a user of an
// account the server does not know; it returns the server configuration.
func operatorMode(t *testing.T, dir string) (conf, creds, otherCreds string) {
	t.Helper()
	op, _ := newNKey(t, nkeys.CreateOperator)
	opPub, _ := op.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "ioc"
	opJWT, err := oc.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	account := func(name string, js bool) (nkeys.KeyPair, string, string) {
		acc, _ := newNKey(t, nkeys.CreateAccount)
		pub, _ := acc.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		token, err := ac.Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		return acc, pub, token
	}
	user := func(acc nkeys.KeyPair, file string) string {
		u, seed := newNKey(t, nkeys.CreateUser)
		pub, _ := u.PublicKey()
		uc := jwt.NewUserClaims(pub)
		uc.Name = "iocd"
		token, err := uc.Encode(acc)
		if err != nil {
			t.Fatal(err)
		}
		b, err := jwt.FormatUserConfig(token, seed)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, dir, file, string(b))
	}
	_, sysPub, sysJWT := account("SYS", false)
	app, appPub, appJWT := account("IOC", true)
	stranger, _, _ := account("STRANGER", true) // signed by the operator, not preloaded
	conf = fmt.Sprintf("operator: %s\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %s\n  %s: %s\n}\n",
		opJWT, sysPub, sysPub, sysJWT, appPub, appJWT)
	return conf, user(app, "iocd.creds"), user(stranger, "stranger.creds")
}

func newCA(t *testing.T, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// newLeaf issues a certificate for 127.0.0.1 (server) or a client.
func newLeaf(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, name+"-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile
}
