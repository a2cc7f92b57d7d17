// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Test token
/// @notice A plain ERC-20 anyone can mint, for tests and benchmarks only.
contract TestToken is ERC20 {
    constructor() ERC20("fedmarket test token", "FMT") {}

    /// @notice Mints `amount` to `to`.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
