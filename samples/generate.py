#!/usr/bin/env python3
"""Writes the sample migration: invites.csv (the input), seed.csv (the
sandbox's invites) and expected.csv (each input row's expected outcome).

Deterministic: the same script always writes the same files, so a test can
compare a run's results with expected.csv line by line. Standard library only.

    python3 samples/generate.py          # writes next to this script
"""

import csv
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = random.Random(20240611)

INPUT_COLUMNS = ["vendor", "scope", "invite_id", "email", "first_name", "last_name",
                 "sender_id", "status", "roles", "note"]
SEED_COLUMNS = ["kind", "scope", "invite_id", "email", "first_name", "last_name",
                "status", "roles"]

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
         "Margaret", "Dennis", "Radia", "Niklaus", "Hedy", "John", "Karen", "Tim",
         "Anita", "Linus", "Sophie", "Guido", "Élodie", "Zoë", "Łukasz", "Søren"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen",
        "Thompson", "Hamilton", "Ritchie", "Perlman", "Wirth", "Lamarr", "Backus",
        "Spärck Jones", "Berners-Lee", "Borg", "Torvalds", "Wilson", "van Rossum",
        "O'Neil", "Nüñez", "Kowalski", "Kierkegaard"]
NETWORKS = ["acme", "globex", "initech", "48213", "umbrella-labs"]
EVENTS = ["evt-summit-2025", "evt-devcon-berlin", "evt-partner-day", "evt-q3-townhall"]
ORGS = ["5f1a2b3c4d5e6f7a8b9c0d1e", "60af924b1c2d3e4f5a6b7c8d", "64b7e0c2f1a9d8e7c6b5a493"]
ORG_ROLES = ["ORG_OWNER", "ORG_MEMBER", "ORG_GROUP_CREATOR", "ORG_READ_ONLY",
             "ORG_BILLING_ADMIN"]
GATE_STATUSES = ["pending", "sent", "accepted", "rejected"]
HUB_STATUSES = ["accepted", "rejected"]
TICKETS = ["CHG-1042", "CHG-1077", "OPS-311", "REORG-7", "", "", "", ""]


def person(i):
    first = FIRST[i % len(FIRST)]
    last = LAST[(i * 7) % len(LAST)]
    local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
    local = local.encode("ascii", "ignore").decode() or "user"
    return first, last, f"{local}{i}@example.com"


def uuid(i):
    h = f"{RNG.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:]}"


def row(**kw):
    r = {c: "" for c in INPUT_COLUMNS}
    r.update(kw)
    return r


def normal_rows():
    """Valid changes to seeded invites: (input row, seed row, expected outcome, why)."""
    out = []
    for i in range(300):
        first, last, email = person(i)
        net = NETWORKS[i % len(NETWORKS)]
        mid = str(100000 + i * 13)
        seed = {"kind": "mighty_networks", "scope": net, "invite_id": mid,
                "email": email, "first_name": first, "last_name": last}
        change = row(vendor="mighty", scope=net, invite_id=mid, email=email,
                     note=RNG.choice(TICKETS))
        # Half rename, some leave a name as is (empty), some record a sender.
        if i % 2 == 0:
            change["first_name"] = first
            change["last_name"] = LAST[(i * 11) % len(LAST)]
        elif i % 3 == 0:
            change["last_name"] = last
        if i % 5 == 0:
            change["sender_id"] = str(9000 + i)
        out.append((change, seed, "updated", "valid change to a seeded invite"))
    for i in range(350):
        ev = EVENTS[i % len(EVENTS)]
        inv = f"inv-{i:06d}"
        seed = {"kind": "securegate", "scope": ev, "invite_id": inv, "status": "pending"}
        change = row(vendor="gate", scope=ev, invite_id=inv,
                     status=RNG.choice(GATE_STATUSES), note=RNG.choice(TICKETS))
        out.append((change, seed, "updated", "valid change to a seeded invite"))
    for i in range(250):
        _, _, email = person(1000 + i)
        org = ORGS[i % len(ORGS)]
        roles = RNG.sample(ORG_ROLES, RNG.choice([1, 1, 2, 3]))
        seed = {"kind": "ops_manager", "scope": org, "email": email, "roles": "ORG_MEMBER"}
        change = row(vendor="om", scope=org, email=email, roles=";".join(roles),
                     note=RNG.choice(TICKETS))
        out.append((change, seed, "updated", "valid change to a seeded invite"))
    for i in range(300):
        _, _, email = person(2000 + i)
        hid = uuid(i)
        seed = {"kind": "ctrl_hub", "invite_id": hid, "email": email, "status": "pending"}
        change = row(vendor="hub", invite_id=hid, status=RNG.choice(HUB_STATUSES),
                     note=RNG.choice(TICKETS))
        out.append((change, seed, "updated", "valid change to a seeded invite"))
    RNG.shuffle(out)
    return out


def special_rows():
    """Rows placed at fixed spots: invalid, unknown, repeated, odd."""
    org = ORGS[0]
    invalid = [
        (row(vendor="mighty", scope="acme", invite_id="990001", email="not-an-email",
             note="expect invalid: recipient_email is not an email"),
         "email: not an email address"),
        (row(vendor="mighty", scope="acme", invite_id="12ab", email="ok@example.com",
             note="expect invalid: Mighty id is not an integer"),
         "invite_id: not an unsigned integer"),
        (row(vendor="mighty", scope="Acme_Corp", invite_id="990002", email="ok@example.com",
             note="expect invalid: network is neither an integer nor a subdomain"),
         "scope: not ^[a-z][a-z0-9-]+$ nor an integer"),
        (row(vendor="mighty", scope="acme", invite_id="990003", email="ok@example.com",
             sender_id="admin", note="expect invalid: sender_id is not an integer"),
         "sender_id: user_id must be an unsigned integer"),
        (row(vendor="gate", scope=EVENTS[0], invite_id="inv-990004", status="maybe",
             note="expect invalid: Securegate status maybe"),
         "status: not pending, sent, accepted or rejected"),
        (row(vendor="hub", invite_id="9a0c7c51-1111-4222-8333-444455556666", status="pending",
             note="expect invalid: Ctrl-Hub accepts only accepted or rejected"),
         "status: Ctrl-Hub takes accepted or rejected only"),
        (row(vendor="om", scope="5f1a2b3c", email="short.org@example.com", roles="ORG_MEMBER",
             note="expect invalid: org_id is not 24 hex digits"),
         "scope: org_id must be 24 hexadecimal digits"),
        (row(vendor="om", scope=org, email="no.roles@example.com", roles="",
             note="expect invalid: empty roles"),
         "roles: at least one role is required"),
        (row(vendor="om", scope=org, email="wyatt at example.com", roles="ORG_OWNER",
             note="expect invalid: username is not an email"),
         "email: not an email address"),
        (row(vendor="zoom", scope="x", invite_id="1", email="ok@example.com", status="accepted",
             note="expect invalid: no vendor account named zoom"),
         "vendor: not a [vendors.*] table of the config"),
    ]
    unknown = [
        (row(vendor="mighty", scope="acme", invite_id="999999", email="ghost@example.com",
             note="expect rejected: invite not in the seed (404)"), None),
        (row(vendor="gate", scope=EVENTS[1], invite_id="inv-999001", status="accepted",
             note="expect rejected: invite not in the seed (404)"), None),
        (row(vendor="om", scope=org, email="nobody.invited@example.com", roles="ORG_MEMBER",
             note="expect rejected: invitation not in the seed (404)"), None),
        (row(vendor="hub", invite_id="00000000-0000-4000-8000-000000000000", status="rejected",
             note="expect rejected: invitation not in the seed (404)"), None),
    ]
    return invalid, unknown


def repeated_rows():
    """Pairs of rows for one invite, placed apart; both apply, in file order."""
    org = ORGS[1]
    return [
        (
            {"kind": "securegate", "scope": EVENTS[2], "invite_id": "inv-twice-1", "status": "pending"},
            row(vendor="gate", scope=EVENTS[2], invite_id="inv-twice-1", status="sent",
                note="expect updated: first of two changes to inv-twice-1"),
            row(vendor="gate", scope=EVENTS[2], invite_id="inv-twice-1", status="accepted",
                note="expect updated: second change to inv-twice-1, lands after the first"),
        ),
        (
            {"kind": "ops_manager", "scope": org, "email": "twice.roles@example.com",
             "roles": "ORG_READ_ONLY"},
            row(vendor="om", scope=org, email="twice.roles@example.com", roles="ORG_MEMBER",
                note="expect updated: first of two role changes"),
            # Upper case on purpose: Ops Manager compares usernames case-insensitively.
            row(vendor="om", scope=org, email="Twice.Roles@Example.com",
                roles="ORG_OWNER;ORG_MEMBER",
                note="expect updated: second role change (same invite, other case)"),
        ),
        (
            {"kind": "mighty_networks", "scope": "acme", "invite_id": "424242",
             "email": "renamed@example.com", "first_name": "Old", "last_name": "Name"},
            row(vendor="mighty", scope="acme", invite_id="424242", email="renamed@example.com",
                first_name="Middle", note="expect updated: first rename"),
            row(vendor="mighty", scope="acme", invite_id="424242", email="renamed@example.com",
                first_name="New", last_name="Name", note="expect updated: second rename"),
        ),
    ]


def main():
    normal = normal_rows()
    invalid, unknown = special_rows()
    repeated = repeated_rows()

    rows = [(r, "updated", why) for r, _, _, why in normal]
    seeds = [s for _, s, _, _ in normal]

    # A formula-looking note on a valid row: the results must neutralise it.
    rows[3][0]["note"] = "=HYPERLINK(\"http://example.com\")"

    # Fixed, spread-out spots so the special rows are easy to find by line.
    def put(at, item):
        rows.insert(at, item)

    for n, (r, why) in enumerate(invalid):
        put(40 + n * 97, (r, "invalid", why))
    for n, (r, _) in enumerate(unknown):
        put(90 + n * 211, (r, "rejected", "not in seed.csv: the sandbox answers 404"))
    for n, (seed, first, second) in enumerate(repeated):
        seeds.append(seed)
        put(20 + n * 300, (first, "updated", "first of two changes to one invite"))
        put(620 + n * 300, (second, "updated", "second change to the same invite, after the first"))

    with open(os.path.join(HERE, "invites.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=INPUT_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r, _, _ in rows:
            w.writerow(r)

    with open(os.path.join(HERE, "expected.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["line", "vendor", "outcome", "why"])
        for line, (r, outcome, why) in enumerate(rows, start=2):
            w.writerow([line, r["vendor"], outcome, why])

    seeds.sort(key=lambda s: (s["kind"], s.get("scope", ""), s.get("invite_id", ""), s.get("email", "")))
    with open(os.path.join(HERE, "seed.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=SEED_COLUMNS, lineterminator="\n", restval="")
        w.writeheader()
        for s in seeds:
            w.writerow(s)

    counts = {}
    for _, outcome, _ in rows:
        counts[outcome] = counts.get(outcome, 0) + 1
    print(f"{len(rows)} rows: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + f"; {len(seeds)} seeded invites")


if __name__ == "__main__":
    main()
