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
		{"", 0, 0, 0},
	}
	for _, tt := range tests {
		seq, cseq, pending := AckSeqs(tt.reply)
		if seq != tt.seq || cseq != tt.cseq || pending != tt.pending {
			t.Errorf("AckSeqs(%q) = %d, %d, %d; want %d, %d, %d", tt.reply, seq, cseq, pending, tt.seq, tt.cseq, tt.pending)
		}
	}
}
