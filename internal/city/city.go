// Package city is Huế's table of areas: the 40 wards and communes with
// their slugs (the events' area token), Vietnamese names and approximate
// centres, used by the simulator, the alert engine ({{area_name}}) and the
// console.
package city

// Area is one of the 40 wards (phường) and communes (xã) of Huế city since
// 1 July 2025, with its slug (the event's area token), Vietnamese display name
// and an approximate centre.
type Area struct {
	Slug string
	Name string
	Lat  float64
	Lon  float64
}

// areaTable is read-only; Areas hands out copies so callers cannot alter it.
//
// The coordinates are approximate centres good enough for a map of simulated
// devices; they are not survey data.
var areaTable = [Count]Area{
	// Wards (phường).
	{"phu-xuan", "Phú Xuân", 16.4700, 107.5790},
	{"kim-long", "Kim Long", 16.4640, 107.5560},
	{"vy-da", "Vỹ Dạ", 16.4740, 107.6080},
	{"thuan-hoa", "Thuận Hóa", 16.4610, 107.5950},
	{"huong-an", "Hương An", 16.4920, 107.5520},
	{"thuy-xuan", "Thủy Xuân", 16.4350, 107.5700},
	{"an-cuu", "An Cựu", 16.4520, 107.6020},
	{"phong-dien", "Phong Điền", 16.5800, 107.3500},
	{"phong-phu", "Phong Phú", 16.6050, 107.3300},
	{"phong-dinh", "Phong Dinh", 16.6200, 107.3900},
	{"phong-thai", "Phong Thái", 16.5450, 107.4000},
	{"phong-quang", "Phong Quảng", 16.6250, 107.4500},
	{"thuan-an", "Thuận An", 16.5600, 107.6400},
	{"duong-no", "Dương Nỗ", 16.5080, 107.6250},
	{"my-thuong", "Mỹ Thượng", 16.5200, 107.5950},
	{"phu-bai", "Phú Bài", 16.4000, 107.7000},
	{"thanh-thuy", "Thanh Thủy", 16.4300, 107.6400},
	{"huong-thuy", "Hương Thủy", 16.4100, 107.6200},
	{"huong-tra", "Hương Trà", 16.5300, 107.4700},
	{"hoa-chau", "Hóa Châu", 16.5400, 107.5500},
	{"kim-tra", "Kim Trà", 16.4800, 107.5000},
	// Communes (xã).
	{"quang-dien", "Quảng Điền", 16.5800, 107.5000},
	{"dan-dien", "Đan Điền", 16.6000, 107.4800},
	{"phu-ho", "Phú Hồ", 16.4800, 107.6700},
	{"phu-vang", "Phú Vang", 16.4800, 107.7100},
	{"phu-vinh", "Phú Vinh", 16.4600, 107.7600},
	{"binh-dien", "Bình Điền", 16.3800, 107.5300},
	{"a-luoi-1", "A Lưới 1", 16.3300, 107.1700},
	{"a-luoi-2", "A Lưới 2", 16.2800, 107.2100},
	{"a-luoi-3", "A Lưới 3", 16.2200, 107.2700},
	{"a-luoi-4", "A Lưới 4", 16.1600, 107.3300},
	{"a-luoi-5", "A Lưới 5", 16.1000, 107.3800},
	{"phu-loc", "Phú Lộc", 16.2900, 107.8700},
	{"vinh-loc", "Vinh Lộc", 16.3700, 107.9000},
	{"hung-loc", "Hưng Lộc", 16.2600, 107.9300},
	{"chan-may-lang-co", "Chân Mây - Lăng Cô", 16.2300, 108.0700},
	{"loc-an", "Lộc An", 16.3200, 107.8000},
	{"khe-tre", "Khe Tre", 16.1600, 107.7200},
	{"nam-dong", "Nam Đông", 16.1000, 107.6600},
	{"long-quang", "Long Quảng", 16.3300, 107.6500},
}

// Count is the number of areas.
const Count = 40

// Areas returns the 40 areas of Huế city, wards first.
func Areas() []Area {
	out := make([]Area, len(areaTable))
	copy(out, areaTable[:])
	return out
}

// At returns the area at index i of Areas.
func At(i int) Area { return areaTable[i] }

// Index returns the index of slug in Areas, or -1.
func Index(slug string) int {
	for i := range areaTable {
		if areaTable[i].Slug == slug {
			return i
		}
	}
	return -1
}
