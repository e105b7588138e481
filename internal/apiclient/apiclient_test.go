package apiclient

import (
	"strings"
	"testing"
)

func TestReadEvents(t *testing.T) {
	in := ": keepalive\n\nevent: snapshot\ndata: []\n\nevent: alert\nid: a:1\ndata: {\"a\":\ndata: 1}\n\n"
	var got []string
	err := ReadEvents(strings.NewReader(in), func(name, id string, data []byte) error {
		got = append(got, name+"("+id+")="+string(data))
		return nil
	})
	if err == nil || err.Error() != "connection closed" {
		t.Fatalf("err = %v", err)
	}
	if strings.Join(got, "|") != "snapshot()=[]|alert(a:1)={\"a\":\n1}" {
		t.Fatalf("got %q", got)
	}
}
