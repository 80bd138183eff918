package containerconfig

import (
	"encoding/json"
	"maps"
	"slices"
)

// VolumeMapping is one entry of a workspace's volume_mappings or a group's
// volume_mapping, in Kasm's format:
//
//	{"/host/path/{username}": {"bind": "/in/container", "mode": "rw", "uid": 1000, "gid": 1000}}
//
// Host is the directory on the agent (tokens allowed), Bind where it
// appears in the container. When UID and GID are given the directory is
// created with that owner if missing (and given that owner if not).
type VolumeMapping struct {
	Host     string
	Bind     string
	ReadOnly bool
	UID, GID *int
}

// Owned reports whether the mapping names an owner for its directory.
func (m VolumeMapping) Owned() bool { return m.UID != nil && m.GID != nil }

// ParseVolumeMappings decodes and checks a volume mappings object; paths
// are checked after substituting sample tokens, so a mapping valid here is
// valid for every user. Entries come out sorted by host path.
func ParseVolumeMappings(raw []byte) ([]VolumeMapping, Errors) {
	obj, errs := object(raw)
	if len(errs) > 0 {
		return nil, errs
	}
	var out []VolumeMapping
	for _, host := range slices.Sorted(maps.Keys(obj)) {
		m, problems := parseVolumeMapping(host, obj[host])
		errs = append(errs, problems...)
		if len(problems) == 0 {
			out = append(out, m)
		}
	}
	return out, errs
}

func parseVolumeMapping(host string, raw json.RawMessage) (VolumeMapping, Errors) {
	var errs Errors
	m := VolumeMapping{Host: host}
	if problem := CheckTemplatePath(host, false); problem != "" {
		errs.add(host, "%s", problem)
	}
	var e map[string]json.RawMessage
	if err := json.Unmarshal(raw, &e); err != nil || e == nil {
		errs.add(host, "must be an object with bind and mode")
		return m, errs
	}
	for _, k := range slices.Sorted(maps.Keys(e)) {
		field := host + "." + k
		switch k {
		case "bind":
			if s, ok := str(&errs, field, e[k]); ok {
				if problem := CheckTemplatePath(s, false); problem != "" {
					errs.add(field, "%s", problem)
				}
				m.Bind = s
			}
		case "mode":
			if s, ok := str(&errs, field, e[k]); ok {
				switch s {
				case "rw":
				case "ro":
					m.ReadOnly = true
				default:
					errs.add(field, "must be rw or ro")
				}
			}
		case "uid", "gid":
			var n int
			if json.Unmarshal(e[k], &n) != nil || n < 0 {
				errs.add(field, "must be a non-negative integer")
				continue
			}
			if k == "uid" {
				m.UID = &n
			} else {
				m.GID = &n
			}
		default:
			errs.add(field, "is not a volume mapping key (bind, mode, uid, gid)")
		}
	}
	if _, ok := e["bind"]; !ok {
		errs.add(host+".bind", "is required")
	}
	if (m.UID == nil) != (m.GID == nil) {
		errs.add(host, "give both uid and gid, or neither")
	}
	return m, errs
}

// UsesUserToken reports whether the mapping is per user.
func (m VolumeMapping) UsesUserToken() bool { return UsesUserToken(m.Host) || UsesUserToken(m.Bind) }

// Render substitutes the tokens and checks the result again.
func (m VolumeMapping) Render(t Tokens) (VolumeMapping, error) {
	m.Host, m.Bind = t.Substitute(m.Host), t.Substitute(m.Bind)
	var errs Errors
	if problem := CheckPath(m.Host, false); problem != "" {
		errs.add(m.Host, "%s", problem)
	}
	if problem := CheckPath(m.Bind, false); problem != "" {
		errs.add(m.Host+".bind", "%s", problem)
	}
	return m, errs.Err()
}
