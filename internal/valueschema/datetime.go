package valueschema

// RFC 3339 dates and date-times, parsed by hand: time.Parse neither
// accepts every form RFC 3339 allows (a lowercase t or z, a leap second)
// nor refuses every form it does not, and this runs once per field per
// record.

// parseDate parses an RFC 3339 full-date, YYYY-MM-DD, to days since the
// Unix epoch.
func parseDate(b []byte) (int32, bool) {
	if len(b) != 10 {
		return 0, false
	}
	days, ok := date(b)
	return int32(days), ok
}

// parseTimestamp parses an RFC 3339 date-time to microseconds since the
// Unix epoch, UTC: YYYY-MM-DD, T (or t), HH:MM:SS, an optional fraction
// of any length (truncated to microseconds), and Z (or z) or a ±HH:MM
// offset. A leap second (:60, where the time in UTC is 23:59) is taken as
// the last microsecond of its day, 23:59:59.999999.
func parseTimestamp(b []byte) (int64, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") {
		return 0, false
	}
	days, ok := date(b[:10])
	if !ok || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	hour, ok1 := digits2(b[11:13])
	minute, ok2 := digits2(b[14:16])
	second, ok3 := digits2(b[17:19])
	if !ok1 || !ok2 || !ok3 || hour > 23 || minute > 59 || second > 60 {
		return 0, false
	}
	rest := b[19:]
	var micros int64
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			if n <= 6 {
				micros = micros*10 + int64(rest[n]-'0')
			}
			n++
		}
		if n == 1 {
			return 0, false
		}
		for i := n; i <= 6; i++ {
			micros *= 10
		}
		rest = rest[n:]
	}
	var offset int64 // minutes east of UTC
	switch {
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits2(rest[1:3])
		om, ok2 := digits2(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*60 + om)
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	if second == 60 {
		if utcMinute := ((int64(hour*60+minute)-offset)%1440 + 1440) % 1440; utcMinute != 23*60+59 {
			return 0, false
		}
		second, micros = 59, 999999
	}
	secs := days*86400 + int64(hour*3600+minute*60+second) - offset*60
	return secs*1_000_000 + micros, true
}

// date parses YYYY-MM-DD (b is 10 bytes) to days since the Unix epoch.
func date(b []byte) (int64, bool) {
	if b[4] != '-' || b[7] != '-' {
		return 0, false
	}
	hi, ok1 := digits2(b[0:2])
	lo, ok2 := digits2(b[2:4])
	month, ok3 := digits2(b[5:7])
	day, ok4 := digits2(b[8:10])
	if !ok1 || !ok2 || !ok3 || !ok4 || month < 1 || month > 12 || day < 1 {
		return 0, false
	}
	year := hi*100 + lo
	if day > daysIn(year, month) {
		return 0, false
	}
	return daysFromCivil(int64(year), int64(month), int64(day)), true
}

func digits2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is days since 1970-01-01 of a proleptic Gregorian date
// (Howard Hinnant's algorithm, http://howardhinnant.github.io/date_algorithms.html).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12 // March is 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
