package broker

import "testing"

func TestAckSeqs(t *testing.T) {
	tests := []struct {
		reply              string
		seq, cseq, pending uint64
	}{
		{"$JS.ACK.IOC_EVENTS.iocd.1.42.40.1795392000000000000.7", 42, 40, 7},
		{"$JS.ACK.hub.ACCHASH.IOC_EVENTS.iocd.2.1000.999.1795392000000000000.0.r4nd", 1000, 999, 0},
		{"$JS.ACK.hub.ACCHASH.IOC_EVENTS.iocd.2.5.6.1795392000000000000.3", 5, 6, 3},
		{"_INBOX.abc", 0, 0, 0},
		{"$JS.ACK.IOC_EVENTS.iocd.1.x42.40.1795392000000000000.7", 0, 40, 7},        // not a number: 0, as ParseUint's
		{"$JS.ACK.IOC_EVENTS.iocd.1.99999999999999999999.40.1.7", 1<<64 - 1, 40, 7}, // out of range: ParseUint's
		{"$JS.ACK.IOC_EVENTS.iocd.1..40.1.7", 0, 40, 7},
		{"a.b.c.d.e.f.g.h.i.j", 0, 0, 0}, // ten tokens: neither form
		{"", 0, 0, 0},
	}
	for _, tt := range tests {
		seq, cseq, pending := AckSeqs(tt.reply)
		if seq != tt.seq || cseq != tt.cseq || pending != tt.pending {
			t.Errorf("AckSeqs(%q) = %d, %d, %d; want %d, %d, %d", tt.reply, seq, cseq, pending, tt.seq, tt.cseq, tt.pending)
		}
	}
}

func BenchmarkAckSeqs(b *testing.B) {
	for b.Loop() {
		AckSeqs("$JS.ACK.IOC_EVENTS.iocd.1.423318.423318.1795392000000000000.576682")
	}
}
