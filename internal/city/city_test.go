package city

import (
	"regexp"
	"testing"
)

func TestAreas(t *testing.T) {
	slug := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	areas := Areas()
	if len(areas) != Count {
		t.Fatalf("%d areas, want %d", len(areas), Count)
	}
	seen := map[string]bool{}
	for i, a := range areas {
		if !slug.MatchString(a.Slug) || seen[a.Slug] || a.Name == "" || Index(a.Slug) != i || At(i) != a {
			t.Errorf("bad or repeated area %+v", a)
		}
		seen[a.Slug] = true
	}
	if Index("no-such-area") != -1 {
		t.Error("an unknown slug has an index")
	}
	areas[0].Slug = "changed"
	if Areas()[0].Slug == "changed" {
		t.Fatal("Areas exposes its backing array")
	}
}
