// SPDX-License-Identifier: GPL-3.0-or-later
// fedmarket layer-2 circuit: one RFFL round of the protocol's integer rules (aggregator/fixedpoint.py),
// proven from per-owner Poseidon commitments of packed quantized updates.
// Links circomlib (GPL-3.0, vendored in the groth16py wheel): Poseidon, Num2Bits, comparators, Sha256.
pragma circom 2.0.0;

include "poseidon.circom";
include "bitify.circom";
include "comparators.circom";
include "sha256/sha256.circom";

function clog2(x) {
    var r = 0;
    while ((1 << r) < x) { r++; }
    return r;
}

// in is 0 or 1
template Bit() {
    signal input in;
    in * (in - 1) === 0;
}

// 0 <= in < 2^b
template UInt(b) {
    signal input in;
    component bits = Num2Bits(b);
    bits.in <== in;
}

// -2^b <= in < 2^b; nonneg = 1 iff in >= 0
template SignedInt(b) {
    signal input in;
    signal output nonneg;
    component bits = Num2Bits(b + 1);
    bits.in <== in + (1 << b);
    nonneg <== bits.out[b];
}

// num = quot * den + rem with 0 <= rem < den (den >= 1, den < 2^remBits): floor division,
// given the quotient's own range check by the caller (no wrap-around for the sizes used).
template DivCheck(remBits) {
    signal input num;
    signal input den;
    signal input quot;
    signal input rem;
    num === quot * den + rem;
    component lo = Num2Bits(remBits);
    lo.in <== rem;
    component hi = Num2Bits(remBits);
    hi.in <== den - 1 - rem;
}

// s = floor(sqrt(x)) for 0 <= x < 2^(2b): s^2 <= x < (s+1)^2
template ISqrtCheck(b) {
    signal input x;
    signal input s;
    component sb = Num2Bits(b);
    sb.in <== s;
    signal sq;
    sq <== s * s;
    component lo = Num2Bits(2 * b + 1);
    lo.in <== x - sq;
    component hi = Num2Bits(2 * b + 2);
    hi.in <== sq + 2 * s - x;
}

// h_0 = head; h_{k+1} = Poseidon(h_k, e[15k .. 15k+14]) with zero padding (zk/groth16/poseidon.py chain_hash)
template ChainHash(L) {
    signal input head;
    signal input in[L];
    signal output out;
    var B = (L + 14) \ 15;
    if (B == 0) { B = 1; }
    component h[B];
    for (var k = 0; k < B; k++) {
        h[k] = Poseidon(16);
        if (k == 0) { h[k].inputs[0] <== head; } else { h[k].inputs[0] <== h[k - 1].out; }
        for (var s = 0; s < 15; s++) {
            if (15 * k + s < L) { h[k].inputs[s + 1] <== in[15 * k + s]; } else { h[k].inputs[s + 1] <== 0; }
        }
    }
    out <== h[B - 1].out;
}

// Commitment to a vector of D values with |v| <= 2^VB: slots v + 2^VB of 40 bits, 6 per field element,
// then ChainHash(salt, packed). The caller range-checks the slot values.
template PackedCommit(D, VB) {
    signal input v[D];
    signal input salt;
    signal output out;
    var K = (D + 5) \ 6;
    signal packed[K];
    for (var k = 0; k < K; k++) {
        var acc = 0;
        for (var s = 0; s < 6; s++) {
            if (6 * k + s < D) { acc += (v[6 * k + s] + (1 << VB)) * (1 << (40 * s)); }
        }
        packed[k] <== acc;
    }
    component h = ChainHash(K);
    h.head <== salt;
    for (var k = 0; k < K; k++) { h.in[k] <== packed[k]; }
    out <== h.out;
}

// floor(v_i * ONE / sum v) for v_i >= 0 (zeros stay zeros): aggregator/fixedpoint.py normalise
template Normalise(N, FRAC, TB) {
    signal input v[N];
    signal input quot[N];
    signal input rem[N];
    signal output out[N];
    var total = 0;
    for (var i = 0; i < N; i++) { total += v[i]; }
    component z = IsZero();
    z.in <== total;
    component div[N];
    component qr[N];
    for (var i = 0; i < N; i++) {
        div[i] = DivCheck(TB);
        div[i].num <== v[i] * (1 << FRAC);
        div[i].den <== total + z.out;
        div[i].quot <== quot[i];
        div[i].rem <== rem[i];
        qr[i] = UInt(FRAC + 1);
        qr[i].in <== quot[i];
        out[i] <== quot[i];
    }
}

// One RFFL round (rule version rffl-v1): see zk/groth16/witness.py for the inputs and hints.
template FedmarketRules(N, D, VB) {
    var FRAC = 20;
    var ONE = 1 << FRAC;
    var LD = clog2(D);
    var LN = clog2(N + 1);
    var SQB = 2 * VB + LD;
    var GB = (SQB + 1) \ 2;
    var DB = FRAC + 1 + LN;
    var TB = FRAC + 2 + LN;
    var BB = 16;

    signal input publicHash;

    signal input q[N][D];
    signal input salt[N];
    signal input modelSalt;
    signal input submitted[N];
    signal input kept[N];
    signal input active[N];
    signal input base[N];
    signal input repOld[N];
    signal input gamma;
    signal input alpha;
    signal input betaNum;
    signal input betaDen;
    signal input clipT[N];
    signal input clipRem[N];
    signal input clipS[N];
    signal input wQ[N];
    signal input wRem[N];
    signal input aggQ[D];
    signal input aggRem[D];
    signal input cosT[N];
    signal input cosRem[N];
    signal input cosS[N];
    signal input repY[N];
    signal input repRem[N];
    signal input n1Q[N];
    signal input n1Rem[N];
    signal input n2Q[N];
    signal input n2Rem[N];

    // ---- parameters and flags
    component gR = UInt(GB);
    gR.in <== gamma;
    component gZ = IsZero();
    gZ.in <== gamma;
    gZ.out === 0;
    component aR = UInt(FRAC + 1);
    aR.in <== alpha;
    component aR2 = UInt(FRAC + 1);
    aR2.in <== ONE - alpha;
    component bnR = UInt(BB);
    bnR.in <== betaNum;
    component bdR = UInt(BB);
    bdR.in <== betaDen;
    component bdZ = IsZero();
    bdZ.in <== betaDen;
    bdZ.out === 0;
    signal gsq;
    gsq <== gamma * gamma;

    component bS[N];
    component bK[N];
    component bA[N];
    component baseR[N];
    component repR[N];
    signal m1[N];
    signal m[N];
    for (var i = 0; i < N; i++) {
        bS[i] = Bit(); bS[i].in <== submitted[i];
        bK[i] = Bit(); bK[i].in <== kept[i];
        bA[i] = Bit(); bA[i].in <== active[i];
        baseR[i] = UInt(FRAC + 1); baseR[i].in <== base[i];
        repR[i] = UInt(FRAC + 1); repR[i].in <== repOld[i];
        m1[i] <== kept[i] * active[i];
        m[i] <== m1[i] * submitted[i];
    }

    // ---- updates: range, commitments, squared norms
    component qR[N][D];
    signal qq[N][D];
    component com[N];
    var sq[N];
    for (var i = 0; i < N; i++) {
        sq[i] = 0;
        com[i] = PackedCommit(D, VB);
        com[i].salt <== salt[i];
        for (var j = 0; j < D; j++) {
            qR[i][j] = UInt(VB + 1);
            qR[i][j].in <== q[i][j] + (1 << VB);
            qq[i][j] <== q[i][j] * q[i][j];
            sq[i] += qq[i][j];
            com[i].v[j] <== q[i][j];
        }
    }

    // ---- clip factors c_i = ONE if |q|^2 <= gamma^2 else isqrt(floor(gamma^2 ONE^2 / |q|^2)); 0 if not submitted
    component le[N];
    component clipDiv[N];
    component clipTR[N];
    component clipSq[N];
    signal notLe[N];
    signal clipDen[N];
    signal clipNum[N];
    signal clipSel[N];
    signal factor[N];
    for (var i = 0; i < N; i++) {
        le[i] = LessEqThan(SQB + 2);
        le[i].in[0] <== sq[i];
        le[i].in[1] <== gsq;
        notLe[i] <== 1 - le[i].out;
        clipDen[i] <== sq[i] + le[i].out * (1 - sq[i]);
        clipNum[i] <== notLe[i] * gsq * ONE * ONE;
        clipDiv[i] = DivCheck(SQB + 1);
        clipDiv[i].num <== clipNum[i];
        clipDiv[i].den <== clipDen[i];
        clipDiv[i].quot <== clipT[i];
        clipDiv[i].rem <== clipRem[i];
        clipTR[i] = UInt(2 * FRAC + 2);
        clipTR[i].in <== clipT[i];
        clipSq[i] = ISqrtCheck(FRAC + 2);
        clipSq[i].x <== clipT[i];
        clipSq[i].s <== clipS[i];
        clipSel[i] <== le[i].out * ONE + notLe[i] * clipS[i];
        factor[i] <== submitted[i] * clipSel[i];
    }

    // ---- weights W_i = floor(base_i c_i / ONE) for kept, active, submitted rows
    component wDiv[N];
    component wQR[N];
    signal W[N];
    signal mb[N];
    var den = 0;
    for (var i = 0; i < N; i++) {
        wDiv[i] = DivCheck(FRAC + 1);
        wDiv[i].num <== base[i] * factor[i];
        wDiv[i].den <== ONE;
        wDiv[i].quot <== wQ[i];
        wDiv[i].rem <== wRem[i];
        wQR[i] = UInt(FRAC + 2);
        wQR[i].in <== wQ[i];
        W[i] <== m[i] * wQ[i];
        mb[i] <== m[i] * base[i];
        den += mb[i];
    }
    signal denSum;
    denSum <== den;
    component denZ = IsZero();
    denZ.in <== denSum;

    // ---- aggregate u_j = floor(sum_i W_i q_ij / Den), committed like an update
    signal wq[N][D];
    component aggDiv[D];
    component aggR[D];
    component model = PackedCommit(D, VB);
    model.salt <== modelSalt;
    signal uu[D];
    var aggsq = 0;
    for (var j = 0; j < D; j++) {
        var num = 0;
        for (var i = 0; i < N; i++) {
            wq[i][j] <== W[i] * q[i][j];
            num += wq[i][j];
        }
        aggDiv[j] = DivCheck(DB);
        aggDiv[j].num <== num;
        aggDiv[j].den <== denSum + denZ.out;
        aggDiv[j].quot <== aggQ[j];
        aggDiv[j].rem <== aggRem[j];
        aggR[j] = UInt(VB + 1);
        aggR[j].in <== aggQ[j] + (1 << VB);
        model.v[j] <== aggQ[j];
        uu[j] <== aggQ[j] * aggQ[j];
        aggsq += uu[j];
    }

    // ---- phi_i = trunc(ONE cos(q_i, u)) for active, submitted rows
    signal qu[N][D];
    signal dot[N];
    signal cosDen[N];
    signal cosNum[N];
    component dotSign[N];
    component denIsZ[N];
    component cosDiv[N];
    component cosTR[N];
    component cosSq[N];
    signal signed[N];
    signal live[N];
    signal phi[N];
    signal aggsqS;
    aggsqS <== aggsq;
    for (var i = 0; i < N; i++) {
        var acc = 0;
        for (var j = 0; j < D; j++) {
            qu[i][j] <== q[i][j] * aggQ[j];
            acc += qu[i][j];
        }
        dot[i] <== acc;
        dotSign[i] = SignedInt(SQB);
        dotSign[i].in <== dot[i];
        cosDen[i] <== sq[i] * aggsqS;
        denIsZ[i] = IsZero();
        denIsZ[i].in <== cosDen[i];
        cosNum[i] <== dot[i] * dot[i] * ONE * ONE;
        cosDiv[i] = DivCheck(2 * SQB + 2);
        cosDiv[i].num <== cosNum[i];
        cosDiv[i].den <== cosDen[i] + denIsZ[i].out;
        cosDiv[i].quot <== cosT[i];
        cosDiv[i].rem <== cosRem[i];
        cosTR[i] = UInt(2 * FRAC + 2);
        cosTR[i].in <== cosT[i];
        cosSq[i] = ISqrtCheck(FRAC + 2);
        cosSq[i].x <== cosT[i];
        cosSq[i].s <== cosS[i];
        signed[i] <== (2 * dotSign[i].nonneg - 1) * cosS[i];
        live[i] <== active[i] * submitted[i];
        phi[i] <== live[i] * signed[i];
    }

    // ---- reputation r_i <- max(0, floor((A r_i + (ONE - A) phi_i) / ONE)) for active rows
    component repDiv[N];
    component repSign[N];
    signal repPos[N];
    signal aRep[N];
    signal bPhi[N];
    signal rs[N];
    for (var i = 0; i < N; i++) {
        repDiv[i] = DivCheck(FRAC + 1);
        aRep[i] <== alpha * repOld[i];
        bPhi[i] <== (ONE - alpha) * phi[i];
        repDiv[i].num <== aRep[i] + bPhi[i];
        repDiv[i].den <== ONE;
        repDiv[i].quot <== repY[i];
        repDiv[i].rem <== repRem[i];
        repSign[i] = SignedInt(FRAC + 2);
        repSign[i].in <== repY[i];
        repPos[i] <== repSign[i].nonneg * repY[i];
        rs[i] <== active[i] * repPos[i];
    }
    component norm1 = Normalise(N, FRAC, TB);
    for (var i = 0; i < N; i++) {
        norm1.v[i] <== rs[i];
        norm1.quot[i] <== n1Q[i];
        norm1.rem[i] <== n1Rem[i];
    }

    // ---- removal: r_i |R| beta_den < beta_num ONE, then renormalise
    var count = 0;
    for (var i = 0; i < N; i++) { count += active[i]; }
    signal activeCount;
    activeCount <== count;
    signal lhsA[N];
    signal lhs[N];
    signal rhs;
    rhs <== betaNum * ONE;
    component below[N];
    signal removed[N];
    signal keepRep[N];
    for (var i = 0; i < N; i++) {
        lhsA[i] <== norm1.out[i] * activeCount;
        lhs[i] <== lhsA[i] * betaDen;
        below[i] = LessThan(FRAC + 2 + LN + BB + 1);
        below[i].in[0] <== lhs[i];
        below[i].in[1] <== rhs;
        removed[i] <== active[i] * below[i].out;
        keepRep[i] <== (1 - removed[i]) * norm1.out[i];
    }
    component norm2 = Normalise(N, FRAC, TB);
    for (var i = 0; i < N; i++) {
        norm2.v[i] <== keepRep[i];
        norm2.quot[i] <== n2Q[i];
        norm2.rem[i] <== n2Rem[i];
    }

    // ---- digest of everything the chain does not read directly
    var L = N + 5 + 4 * N;
    component digest = ChainHash(L);
    digest.head <== 34843574901699042946390652570783756154417;  // int("fedmarket/rffl-v1" as big-endian bytes): RULE_TAG in zk/groth16/rules.py
    for (var i = 0; i < N; i++) { digest.in[i] <== com[i].out; }
    digest.in[N] <== model.out;
    digest.in[N + 1] <== gamma;
    digest.in[N + 2] <== alpha;
    digest.in[N + 3] <== betaNum;
    digest.in[N + 4] <== betaDen;
    for (var i = 0; i < N; i++) {
        digest.in[N + 5 + 4 * i] <== base[i];
        digest.in[N + 6 + 4 * i] <== repOld[i];
        digest.in[N + 7 + 4 * i] <== norm2.out[i];
        digest.in[N + 8 + 4 * i] <== submitted[i] + 2 * kept[i] + 4 * active[i] + 8 * removed[i];
    }

    // ---- public input: sha256(weights as uint32 big-endian || digest as uint256) >> 3
    component wBits[N];
    component dBits = Num2Bits_strict();
    dBits.in <== digest.out;
    component sha = Sha256(32 * N + 256);
    for (var i = 0; i < N; i++) {
        wBits[i] = Num2Bits(32);
        wBits[i].in <== W[i];
        for (var k = 0; k < 32; k++) { sha.in[32 * i + k] <== wBits[i].out[31 - k]; }
    }
    sha.in[32 * N] <== 0;
    sha.in[32 * N + 1] <== 0;
    for (var k = 0; k < 254; k++) { sha.in[32 * N + 2 + k] <== dBits.out[253 - k]; }
    var h = 0;
    for (var k = 0; k < 253; k++) { h += sha.out[k] * (1 << (252 - k)); }
    publicHash === h;
}
