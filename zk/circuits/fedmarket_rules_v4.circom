// SPDX-License-Identifier: GPL-3.0-or-later
// fedmarket layer-2 circuit, rule version rffl-v4 = rffl-v3 + a missing score M in [-1, 0], a public parameter.
// rffl-v3's template is repeated here rather than shared: fedmarket_rules_v3.circom stays byte-identical so the
// keys and verifiers of rffl-v3 tasks stay valid. rffl-v3 proves M = 0; rffl-v4 (aggregator/fixedpoint.py
// rffl_round, capped, missing_fp = M) scores
//  - an active owner that sent nothing valid: M (RFFL's sender of nothing, lowered: it leaves within a few rounds);
//  - a live row the filters dropped: min(phi_i, M), with the comparison proven on phi_i + MN, MN = -M·ONE;
//  - MN lies in [0, ONE] and is the last input of the digest chain, which starts at "fedmarket/rffl-v4".
// What rffl-v3 added to rffl-v2, unchanged here:
//  - the norm filter: with med the lower median of the live rows' |q|^2 (the ceil(m/2)-th smallest of m, proven
//    by a one-hot selector and two counts) and K = floor(k^2 ONE) a public parameter in the digest (0 = off),
//        kept_i = live_i * [cos(q_i, ref) >= filterT] * [|q_i|^2 ONE <= K med];
//  - capped scores: a live row that is not kept scores min(phi_i, 0) (fixedpoint.rffl_round, capped=True);
//  - the digest chain starts at "fedmarket/rffl-v3" and ends with filterT, K.
pragma circom 2.0.0;

include "fedmarket_rules.circom";

// One RFFL round (rule version rffl-v4): inputs and hints as rffl-v3 plus the missing score.
template FedmarketRulesScored(N, D, VB) {
    var FRAC = 20;
    var ONE = 1 << FRAC;
    var LD = clog2(D);
    var LN = clog2(N + 1);
    var SQB = 2 * VB + LD;
    var GB = (SQB + 1) \ 2;
    var DB = FRAC + 1 + LN;
    var TB = FRAC + 2 + LN;
    var BB = 16;
    var KB = FRAC + 13;

    signal input publicHash;
    signal input seed;

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
    // rffl-v2: the cosine filter that decides `kept` (aggregator/fixedpoint.py cosine_filter)
    signal input filterT;
    signal input refQ[D];
    signal input refRem[D];
    signal input fcT[N];
    signal input fcRem[N];
    signal input fcS[N];
    // rffl-v3: the norm filter (aggregator/fixedpoint.py norm_ratio_filter)
    signal input normK;
    signal input medSel[N];
    signal input medHalf;
    signal input medOdd;
    // rffl-v4: the missing score M = -missingNeg / ONE
    signal input missingNeg;

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
    component mnR = UInt(FRAC + 1);
    mnR.in <== missingNeg;
    component mnR2 = UInt(FRAC + 1);
    mnR2.in <== ONE - missingNeg;
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
    }
    // rffl-v4: phi_i = signed_i if kept, min(signed_i, -missingNeg) if live and dropped, -missingNeg if active
    // and silent, 0 otherwise; capGe_i = [signed_i + missingNeg >= 0], so min = signed_i - capGe_i (signed_i + missingNeg)
    component capGe[N];
    signal keptPhi[N];
    signal capPhi[N];
    signal dropPhi[N];
    signal silent[N];
    for (var i = 0; i < N; i++) {
        keptPhi[i] <== kept[i] * signed[i];
        capGe[i] = SignedInt(FRAC + 3);
        capGe[i].in <== signed[i] + missingNeg;
        capPhi[i] <== signed[i] - capGe[i].nonneg * (signed[i] + missingNeg);
        dropPhi[i] <== (live[i] - kept[i]) * capPhi[i];
        silent[i] <== active[i] - live[i];
        phi[i] <== keptPhi[i] + dropPhi[i] - silent[i] * missingNeg;
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

    // ---- rffl-v2: kept_i = live_i * [trunc(ONE cos(q_i, ref)) >= filterT] with
    //      ref = floor(sum_i f_i q_i / sum_i f_i), f_i = live_i * base_i (the pre-filter weights)
    component tR = SignedInt(FRAC + 1);
    tR.in <== filterT;
    signal fw[N];
    var fsum = 0;
    for (var i = 0; i < N; i++) {
        fw[i] <== live[i] * base[i];
        fsum += fw[i];
    }
    signal fSum;
    fSum <== fsum;
    component fZ = IsZero();
    fZ.in <== fSum;
    signal fq[N][D];
    component refDiv[D];
    component refR[D];
    signal rr[D];
    var refsq = 0;
    for (var j = 0; j < D; j++) {
        var num = 0;
        for (var i = 0; i < N; i++) {
            fq[i][j] <== fw[i] * q[i][j];
            num += fq[i][j];
        }
        refDiv[j] = DivCheck(DB);
        refDiv[j].num <== num;
        refDiv[j].den <== fSum + fZ.out;
        refDiv[j].quot <== refQ[j];
        refDiv[j].rem <== refRem[j];
        refR[j] = UInt(VB + 1);
        refR[j].in <== refQ[j] + (1 << VB);
        rr[j] <== refQ[j] * refQ[j];
        refsq += rr[j];
    }
    signal refSq;
    refSq <== refsq;
    signal qr[N][D];
    signal fdot[N];
    signal fDen[N];
    signal fNum[N];
    component fSign[N];
    component fDenZ[N];
    component fDiv[N];
    component fTR[N];
    component fSq[N];
    signal fcos[N];
    component ge[N];
    for (var i = 0; i < N; i++) {
        var acc = 0;
        for (var j = 0; j < D; j++) {
            qr[i][j] <== q[i][j] * refQ[j];
            acc += qr[i][j];
        }
        fdot[i] <== acc;
        fSign[i] = SignedInt(SQB);
        fSign[i].in <== fdot[i];
        fDen[i] <== sq[i] * refSq;
        fDenZ[i] = IsZero();
        fDenZ[i].in <== fDen[i];
        fNum[i] <== fdot[i] * fdot[i] * ONE * ONE;
        fDiv[i] = DivCheck(2 * SQB + 2);
        fDiv[i].num <== fNum[i];
        fDiv[i].den <== fDen[i] + fDenZ[i].out;
        fDiv[i].quot <== fcT[i];
        fDiv[i].rem <== fcRem[i];
        fTR[i] = UInt(2 * FRAC + 2);
        fTR[i].in <== fcT[i];
        fSq[i] = ISqrtCheck(FRAC + 2);
        fSq[i].x <== fcT[i];
        fSq[i].s <== fcS[i];
        fcos[i] <== (2 * fSign[i].nonneg - 1) * fcS[i];
        ge[i] = SignedInt(FRAC + 2);
        ge[i].in <== fcos[i] - filterT;
    }

    // ---- rffl-v3: med = the lower median of the live rows' |q|^2: one live row, with at most h = floor((m-1)/2)
    //      live rows below it and at least h + 1 at or below it (m live rows; med = 0 when m = 0)
    component kR = UInt(KB);
    kR.in <== normK;
    var mc = 0;
    for (var i = 0; i < N; i++) { mc += live[i]; }
    signal liveCount;
    liveCount <== mc;
    component mZ = IsZero();
    mZ.in <== liveCount;
    component oddB = Bit();
    oddB.in <== medOdd;
    component halfR = UInt(LN);
    halfR.in <== medHalf;
    2 * medHalf + medOdd === liveCount - 1 + mZ.out;
    component selB[N];
    signal selSq[N];
    var selCount = 0;
    var medAcc = 0;
    for (var i = 0; i < N; i++) {
        selB[i] = Bit();
        selB[i].in <== medSel[i];
        medSel[i] * (1 - live[i]) === 0;
        selCount += medSel[i];
        selSq[i] <== medSel[i] * sq[i];
        medAcc += selSq[i];
    }
    selCount === 1 - mZ.out;
    signal med;
    med <== medAcc;
    component below2[N];
    component atMost[N];
    signal liveBelow[N];
    signal liveAtMost[N];
    var nBelow = 0;
    var nAtMost = 0;
    for (var i = 0; i < N; i++) {
        below2[i] = LessThan(SQB + 1);
        below2[i].in[0] <== sq[i];
        below2[i].in[1] <== med;
        atMost[i] = LessEqThan(SQB + 1);
        atMost[i].in[0] <== sq[i];
        atMost[i].in[1] <== med;
        liveBelow[i] <== live[i] * below2[i].out;
        liveAtMost[i] <== live[i] * atMost[i].out;
        nBelow += liveBelow[i];
        nAtMost += liveAtMost[i];
    }
    component fewBelow = LessEqThan(LN + 1);
    fewBelow.in[0] <== nBelow;
    fewBelow.in[1] <== medHalf;
    fewBelow.out === 1;
    component enoughAtMost = LessEqThan(LN + 1);
    enoughAtMost.in[0] <== medHalf + 1;
    enoughAtMost.in[1] <== nAtMost + mZ.out;
    enoughAtMost.out === 1;

    // ---- rffl-v3: kept_i = live_i * [cosine filter] * [K = 0 or |q_i|^2 ONE <= K med]
    component kZ = IsZero();
    kZ.in <== normK;
    signal kMed;
    kMed <== normK * med;
    component normLe[N];
    signal normOk[N];
    signal cosOk[N];
    for (var i = 0; i < N; i++) {
        normLe[i] = LessEqThan(SQB + KB + FRAC + 1);
        normLe[i].in[0] <== sq[i] * ONE;
        normLe[i].in[1] <== kMed;
        normOk[i] <== kZ.out + (1 - kZ.out) * normLe[i].out;
        cosOk[i] <== live[i] * ge[i].nonneg;
        kept[i] === cosOk[i] * normOk[i];
    }

    // ---- digest of everything the chain does not read directly (rffl-v4: plus the filter threshold, K and -M·ONE)
    var L = N + 5 + 4 * N + 3;
    component digest = ChainHash(L);
    digest.in[L - 3] <== filterT;
    digest.in[L - 2] <== normK;
    digest.in[L - 1] <== missingNeg;
    digest.head <== 34843574901699042946390652570783756154420;  // int("fedmarket/rffl-v4" as big-endian bytes): RULE_TAGS in zk/groth16/linked.py
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

    // ---- link: t = sum_i submitted_i * e_i * <z, q_i>, z_j = seed^(j+1), e_i = seed^(D*i)
    signal zp[D];
    zp[0] <== seed;
    for (var j = 1; j < D; j++) { zp[j] <== zp[j - 1] * seed; }
    signal ep[N];
    ep[0] <== submitted[0];
    signal epRaw[N];
    epRaw[0] <== 1;
    for (var i = 1; i < N; i++) {
        epRaw[i] <== epRaw[i - 1] * zp[D - 1];
        ep[i] <== epRaw[i] * submitted[i];
    }
    signal zq[N][D];
    signal lin[N];
    signal et[N];
    var tAcc = 0;
    for (var i = 0; i < N; i++) {
        var acc = 0;
        for (var j = 0; j < D; j++) {
            zq[i][j] <== zp[j] * q[i][j];
            acc += zq[i][j];
        }
        lin[i] <== acc;
        et[i] <== ep[i] * lin[i];
        tAcc += et[i];
    }
    signal t;
    t <== tAcc;

    // ---- public input: sha256(weights as uint32 big-endian || digest || seed || t, each uint256) >> 3
    component wBits[N];
    component dBits = Num2Bits_strict();
    dBits.in <== digest.out;
    component sBits = Num2Bits_strict();
    sBits.in <== seed;
    component tBits = Num2Bits_strict();
    tBits.in <== t;
    component sha = Sha256(32 * N + 768);
    for (var i = 0; i < N; i++) {
        wBits[i] = Num2Bits(32);
        wBits[i].in <== W[i];
        for (var k = 0; k < 32; k++) { sha.in[32 * i + k] <== wBits[i].out[31 - k]; }
    }
    for (var w = 0; w < 3; w++) {
        sha.in[32 * N + 256 * w] <== 0;
        sha.in[32 * N + 256 * w + 1] <== 0;
    }
    for (var k = 0; k < 254; k++) {
        sha.in[32 * N + 2 + k] <== dBits.out[253 - k];
        sha.in[32 * N + 258 + k] <== sBits.out[253 - k];
        sha.in[32 * N + 514 + k] <== tBits.out[253 - k];
    }
    var h = 0;
    for (var k = 0; k < 253; k++) { h += sha.out[k] * (1 << (252 - k)); }
    publicHash === h;
}
